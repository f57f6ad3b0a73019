import { BlockDecoder, DirectFormat } from './decoder';
import { ByteSource, readExact } from './source';

/**
 * A RAW image: the file is the disk, every block allocated (the caller skips zero blocks).
 * A fixed VHD is the same bytes followed by a footer.
 */
export class RawDecoder extends BlockDecoder {
  /**
   * @param virtualSize the disk's size (default: the file's)
   * @param dataOffset where the disk's first byte is in the file
   */
  constructor(
    source: ByteSource,
    virtualSize: number = source.size,
    private readonly dataOffset: number = 0,
    public readonly format: DirectFormat = 'raw',
    public readonly subformat: string = 'raw',
  ) {
    super(source, virtualSize);
  }

  protected async fill(target: Buffer, start: number, length: number): Promise<boolean> {
    const bytes = await readExact(this.source, this.format, this.dataOffset + start, length, `the disk's bytes ${start} to ${start + length - 1}`);
    bytes.copy(target, 0);
    return true;
  }
}
