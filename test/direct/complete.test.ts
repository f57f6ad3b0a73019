import * as crypto from 'crypto';
import { linearAggregate } from '../../lambda/direct/complete';

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
