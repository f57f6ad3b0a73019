import * as crypto from 'crypto';
import { linearAggregate, packWritten, unpackWritten } from '../../lambda/direct/complete';
import { blockCountOf, splitRanges, volumeSizeGiB } from '../../lambda/direct/plan';

const GIB = 1024 ** 3;

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

test('the linear aggregate hashes the raw digests in ascending block index order', () => {
  const [a, b, c] = [digest('a'), digest('b'), digest('c')];
  const expected = crypto.createHash('sha256').update(Buffer.concat([a, b, c])).digest('base64');
  // Ranges finish in any order: the aggregate sorts.
  expect(linearAggregate([{ index: 9, checksum: c.toString('base64') }, { index: 0, checksum: a.toString('base64') }, { index: 3, checksum: b.toString('base64') }])).toBe(expected);
  expect(linearAggregate([{ index: 0, checksum: b.toString('base64') }, { index: 3, checksum: a.toString('base64') }])).not.toBe(
    linearAggregate([{ index: 0, checksum: a.toString('base64') }, { index: 3, checksum: b.toString('base64') }]));
  expect(linearAggregate([])).toBe(crypto.createHash('sha256').digest('base64'));
});

test.each([
  [[{ index: 1, checksum: digest('a').toString('base64') }, { index: 1, checksum: digest('b').toString('base64') }], /block 1 is listed twice/],
  [[{ index: -1, checksum: digest('a').toString('base64') }], /block index -1 is not a block index/],
  [[{ index: 2, checksum: 'abc' }], /the checksum of block 2 is "abc", not the Base64 of a 32-byte SHA-256 digest/],
  [[{ index: 2, checksum: digest('a').toString('hex') }], /the checksum of block 2 is "[0-9a-f]{64}", not the Base64/],
])('refuses %j', (blocks, message) => {
  expect(() => linearAggregate(blocks)).toThrow(message);
});

test('packWritten and unpackWritten round-trip, 48 characters a block', () => {
  const blocks = [0, 7, 2 ** 27 - 1].map((index) => ({ index, checksum: digest(String(index)).toString('base64') }));
  const packed = packWritten(blocks);
  expect(packed.length).toBe(3 * 48);
  expect(unpackWritten(packed)).toEqual(blocks);
  expect(linearAggregate(unpackWritten(packed))).toBe(linearAggregate(blocks));
  expect(unpackWritten('')).toEqual([]);
  expect(() => unpackWritten(packed.slice(0, 40))).toThrow(/not Base64 of 36-byte entries: it was cut or altered/);
  expect(() => packWritten([{ index: 1, checksum: 'abc' }])).toThrow(/the checksum of block 1 is "abc"/);
  expect(() => packWritten([{ index: -2, checksum: digest('a').toString('base64') }])).toThrow(/block index -2 is not a block index/);
});

describe('plan', () => {
  test.each([
    [0, 1], [1, 1], [GIB, 1], [GIB + 1, 2], [64 * 1024 * GIB, 65536],
  ])('volumeSizeGiB(%d) is %d', (size, gib) => {
    expect(volumeSizeGiB(size)).toBe(gib);
  });
  test('a disk over 64 TiB is refused', () => {
    expect(() => volumeSizeGiB(64 * 1024 * GIB + 1)).toThrow(/70368744177665 bytes \(65537 GiB\), more than an EBS snapshot's 65536 GiB \(64 TiB\)/);
    expect(() => volumeSizeGiB(-1)).toThrow(/whole number of bytes, got -1/);
  });
  test('splitRanges covers every block once', () => {
    expect(splitRanges(13, 5)).toEqual([{ first: 0, end: 5 }, { first: 5, end: 10 }, { first: 10, end: 13 }]);
    expect(splitRanges(0, 5)).toEqual([]);
    expect(splitRanges(4, 8)).toEqual([{ first: 0, end: 4 }]);
    expect(() => splitRanges(4, 0)).toThrow(/rangeBlocks must be a whole number of at least 1, got 0/);
    expect(blockCountOf(6684672)).toBe(13);
  });
});
