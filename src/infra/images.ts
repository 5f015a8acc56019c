import sharp from 'sharp';

export type ImageType = 'jpeg' | 'png' | 'webp';

/** The image type from the file's first bytes; the name and the declared type are not trusted. */
export function sniffImageType(bytes: Buffer): ImageType | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

export class ImageRejectedError extends Error {
  constructor(readonly reason: 'too_many_pixels' | 'undecodable') {
    super(reason === 'too_many_pixels' ? 'image has too many pixels' : 'image cannot be decoded');
  }
}

/** A square `size` x `size` WebP of the image (as `toCoverWebp`): avatars. */
export function toSquareWebp(input: Buffer, size: number, maxPixels: number): Promise<Buffer> {
  return toCoverWebp(input, size, size, maxPixels);
}

/** A 16:9 WebP `width` pixels wide (as `toCoverWebp`): course and lesson thumbnails. */
export function toWebp16x9(input: Buffer, width: number, maxPixels: number): Promise<Buffer> {
  return toCoverWebp(input, width, Math.round((width * 9) / 16), maxPixels);
}

/**
 * A `width` x `height` WebP of the image, cropped to fill it (EXIF orientation applied, metadata
 * dropped). The pixel limit is checked from the header before anything is decoded.
 */
export async function toCoverWebp(input: Buffer, width: number, height: number, maxPixels: number): Promise<Buffer> {
  const image = sharp(input, { limitInputPixels: maxPixels, failOn: 'error' });
  let metadata;
  try {
    metadata = await image.metadata();
  } catch (error) {
    throw new ImageRejectedError(String(error).includes('pixel limit') ? 'too_many_pixels' : 'undecodable');
  }
  if (!metadata.width || !metadata.height) throw new ImageRejectedError('undecodable');
  if (metadata.width * metadata.height > maxPixels) throw new ImageRejectedError('too_many_pixels');
  try {
    return await image.rotate().resize(width, height, { fit: 'cover', position: 'attention' }).webp({ quality: 82 }).toBuffer();
  } catch (error) {
    if (String(error).includes('pixel limit')) throw new ImageRejectedError('too_many_pixels');
    throw new ImageRejectedError('undecodable');
  }
}
