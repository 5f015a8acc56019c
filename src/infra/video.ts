import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';

/** What ffprobe tells of a source video. */
export interface VideoProbe {
  durationSeconds: number;
  width: number;
  height: number;
  hasAudio: boolean;
}

/** One HLS rendition: its folder name, its size and its bit rates. */
export interface Rendition {
  name: string;
  /** The short side in pixels (the height of a landscape video). */
  lines: number;
  videoKbps: number;
}

/** The ladder, highest first; ~6 s segments, H.264 + AAC. */
export const RENDITION_LADDER: readonly Rendition[] = [
  { name: '1080p', lines: 1080, videoKbps: 5000 },
  { name: '720p', lines: 720, videoKbps: 2800 },
  { name: '480p', lines: 480, videoKbps: 1400 },
  { name: '360p', lines: 360, videoKbps: 800 },
];

export const SEGMENT_SECONDS = 6;
const AUDIO_KBPS = 128;

/**
 * The renditions worth making of a source: none above its own size (no upscaling). A source
 * smaller than the lowest rung still gets one rendition, at its own size.
 */
export function renditionsFor(probe: Pick<VideoProbe, 'width' | 'height'>): Rendition[] {
  const lines = Math.min(probe.width, probe.height);
  const fitting = RENDITION_LADDER.filter((rendition) => rendition.lines <= lines);
  if (fitting.length) return fitting;
  const lowest = RENDITION_LADDER[RENDITION_LADDER.length - 1]!;
  const even = lines - (lines % 2);
  return [{ name: `${even}p`, lines: even, videoKbps: Math.max(200, Math.round((lowest.videoKbps * even) / lowest.lines)) }];
}

/**
 * The arguments of the one ffmpeg run that writes every rendition and the master playlist into
 * `outputDir` (`master.m3u8`, `<name>/index.m3u8`, `<name>/segment_NNN.ts`). Keyframes are
 * forced every SEGMENT_SECONDS so segments line up across renditions (a player can switch at
 * any boundary). Exported so the benchmark can run the same command bare.
 */
export function hlsArguments(
  input: string,
  outputDir: string,
  renditions: readonly Rendition[],
  probe: Pick<VideoProbe, 'width' | 'height' | 'hasAudio'>,
): string[] {
  const portrait = probe.height > probe.width;
  const split = `[0:v]split=${renditions.length}${renditions.map((_, index) => `[s${index}]`).join('')}`;
  const scales = renditions.map((rendition, index) => `[s${index}]scale=${portrait ? `${rendition.lines}:-2` : `-2:${rendition.lines}`}[v${index}]`);
  const args = ['-hide_banner', '-nostdin', '-y', '-i', input, '-filter_complex', [split, ...scales].join(';')];
  renditions.forEach((_, index) => args.push('-map', `[v${index}]`));
  if (probe.hasAudio) renditions.forEach(() => args.push('-map', '0:a:0'));
  args.push('-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-pix_fmt', 'yuv420p', '-sc_threshold', '0');
  args.push('-force_key_frames', `expr:gte(t,n_forced*${SEGMENT_SECONDS})`);
  renditions.forEach((rendition, index) => {
    args.push(`-b:v:${index}`, `${rendition.videoKbps}k`, `-maxrate:v:${index}`, `${Math.round(rendition.videoKbps * 1.07)}k`);
    args.push(`-bufsize:v:${index}`, `${Math.round(rendition.videoKbps * 1.5)}k`);
  });
  if (probe.hasAudio) args.push('-c:a', 'aac', '-b:a', `${AUDIO_KBPS}k`, '-ac', '2');
  const streamMap = renditions.map((rendition, index) => `v:${index}${probe.hasAudio ? `,a:${index}` : ''},name:${rendition.name}`).join(' ');
  args.push('-f', 'hls', '-hls_time', String(SEGMENT_SECONDS), '-hls_playlist_type', 'vod', '-hls_flags', 'independent_segments');
  args.push('-hls_segment_filename', path.join(outputDir, '%v', 'segment_%03d.ts'), '-master_pl_name', 'master.m3u8');
  args.push('-var_stream_map', streamMap, path.join(outputDir, '%v', 'index.m3u8'));
  return args;
}

/** ffmpeg or ffprobe ended badly: the exit and the last lines it wrote, for the admin. */
export class VideoToolError extends Error {
  override name = 'VideoToolError';
}

/** The source is not a video these tools can read: trying again will not help. */
export class UnreadableVideoError extends VideoToolError {
  override name = 'UnreadableVideoError';
}

export interface TranscodeOptions {
  signal: AbortSignal;
  /** How far the run is, 0-1, as ffmpeg's `-progress` reports it (about twice a second). */
  onProgress?: (fraction: number) => void;
}

/** The video tools a transcoding job needs; ffmpeg behind it. */
export interface VideoTools {
  /** Whether the tools can be run on this machine (checked once, then remembered). */
  available(): Promise<boolean>;
  probe(file: string, signal: AbortSignal): Promise<VideoProbe>;
  transcodeToHls(input: string, outputDir: string, renditions: readonly Rendition[], probe: VideoProbe, options: TranscodeOptions): Promise<void>;
  /** One frame at `atSeconds`, as PNG bytes. */
  frameAt(input: string, atSeconds: number, signal: AbortSignal): Promise<Buffer>;
}

const STDERR_TAIL_LINES = 8;

interface RunResult {
  stdout: Buffer;
}

/** Runs a tool to its end; stderr's last lines go into the error. `onLine` sees stdout line by line. */
/** Why a run was stopped: the abort's reason when it is an error. */
const abortReason = (signal: AbortSignal): Error => (signal.reason instanceof Error ? signal.reason : new VideoToolError('stopped'));

function run(command: string, args: readonly string[], signal: AbortSignal, onLine?: (line: string) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    const stdout: Buffer[] = [];
    const stderr: string[] = [];
    if (onLine) readline.createInterface({ input: child.stdout }).on('line', onLine);
    else child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_TAIL_LINES) stderr.shift();
    });
    child.once('error', (error) =>
      reject(signal.aborted ? abortReason(signal) : new VideoToolError(`${path.basename(command)} could not run: ${error.message}`)),
    );
    child.once('close', (code, killedBy) => {
      if (code === 0) return resolve({ stdout: Buffer.concat(stdout) });
      if (signal.aborted) return reject(abortReason(signal));
      reject(new VideoToolError(`${path.basename(command)} exited with ${code ?? killedBy}: ${stderr.join(' | ').slice(-1000)}`));
    });
  });
}

interface ProbeOutput {
  streams?: Array<{ codec_type?: string; width?: number; height?: number; side_data_list?: Array<{ rotation?: number }>; tags?: { rotate?: string } }>;
  format?: { duration?: string };
}

/** ffmpeg and ffprobe, as found at their paths (names on PATH by default). */
export class FfmpegTools implements VideoTools {
  private availability: Promise<boolean> | undefined;

  constructor(
    private readonly ffmpegPath: string,
    private readonly ffprobePath: string,
  ) {}

  available(): Promise<boolean> {
    this.availability ??= Promise.all([this.ffmpegPath, this.ffprobePath].map((tool) => run(tool, ['-version'], AbortSignal.timeout(10_000)))).then(
      () => true,
      () => false,
    );
    return this.availability;
  }

  async probe(file: string, signal: AbortSignal): Promise<VideoProbe> {
    let output: ProbeOutput;
    try {
      const { stdout } = await run(this.ffprobePath, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file], signal);
      output = JSON.parse(stdout.toString('utf8')) as ProbeOutput;
    } catch (error) {
      if (signal.aborted || !(error instanceof VideoToolError)) throw error;
      throw new UnreadableVideoError(`the file is not a video ffprobe can read (${error.message})`);
    }
    const video = output.streams?.find((stream) => stream.codec_type === 'video' && stream.width && stream.height);
    if (!video?.width || !video.height) throw new UnreadableVideoError('the file has no video stream');
    let durationSeconds = Number(output.format?.duration);
    // a recording written as it streamed (a browser's MediaRecorder) has no duration in its header: its last packet tells
    if (!(durationSeconds > 0)) durationSeconds = await this.lastPacketEnd(file, signal);
    if (!Number.isFinite(durationSeconds) || durationSeconds <= 0) throw new UnreadableVideoError('the video has no duration');
    // a phone's portrait video is often stored landscape with a rotation: the player shows it turned
    const rotation = Math.abs(Number(video.side_data_list?.find((data) => data.rotation !== undefined)?.rotation ?? video.tags?.rotate ?? 0)) % 180;
    const [width, height] = rotation === 90 ? [video.height, video.width] : [video.width, video.height];
    return { durationSeconds, width, height, hasAudio: Boolean(output.streams?.some((stream) => stream.codec_type === 'audio')) };
  }

  /** Where the file's last packet ends, in seconds (0 when none says): read packet by packet, without decoding. */
  private async lastPacketEnd(file: string, signal: AbortSignal): Promise<number> {
    let end = 0;
    try {
      await run(this.ffprobePath, ['-v', 'error', '-show_entries', 'packet=pts_time,duration_time', '-of', 'csv=p=0', file], signal, (line) => {
        const [pts = NaN, duration = NaN] = line.split(',').map(Number);
        if (Number.isFinite(pts)) end = Math.max(end, pts + (Number.isFinite(duration) ? duration : 0));
      });
    } catch (error) {
      if (signal.aborted || !(error instanceof VideoToolError)) throw error;
      throw new UnreadableVideoError(`the file is not a video ffprobe can read (${error.message})`);
    }
    return end;
  }

  async transcodeToHls(input: string, outputDir: string, renditions: readonly Rendition[], probe: VideoProbe, options: TranscodeOptions): Promise<void> {
    await Promise.all(renditions.map((rendition) => mkdir(path.join(outputDir, rendition.name), { recursive: true })));
    const args = ['-nostats', '-loglevel', 'error', '-progress', 'pipe:1', ...hlsArguments(input, outputDir, renditions, probe)];
    const totalMicroseconds = probe.durationSeconds * 1_000_000;
    await run(this.ffmpegPath, args, options.signal, (line) => {
      const [key, value] = line.split('=', 2);
      if (key === 'out_time_us' && Number(value) > 0) options.onProgress?.(Math.min(1, Number(value) / totalMicroseconds));
      else if (key === 'progress' && value === 'end') options.onProgress?.(1);
    });
  }

  async frameAt(input: string, atSeconds: number, signal: AbortSignal): Promise<Buffer> {
    const args = [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-ss',
      atSeconds.toFixed(3),
      '-i',
      input,
      '-frames:v',
      '1',
      '-f',
      'image2pipe',
      '-c:v',
      'png',
      'pipe:1',
    ];
    const { stdout } = await run(this.ffmpegPath, args, signal);
    if (!stdout.length) throw new VideoToolError('ffmpeg wrote no frame');
    return stdout;
  }
}

export type VideoContainer = 'mp4' | 'mov' | 'webm' | 'mkv' | 'avi' | 'ts' | 'mpg' | 'flv';

/** How many first bytes `sniffVideoContainer` wants. */
export const VIDEO_SNIFF_BYTES = 256;

/** The container from the file's first bytes; the name and the declared type are not trusted. */
export function sniffVideoContainer(head: Buffer): VideoContainer | null {
  const ascii = (from: number, to: number) => head.toString('latin1', from, to);
  if (head.length >= 12 && ascii(4, 8) === 'ftyp') return ascii(8, 12) === 'qt  ' ? 'mov' : 'mp4';
  if (head.length >= 8 && ['moov', 'mdat', 'wide', 'free'].includes(ascii(4, 8))) return 'mov';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3) return head.includes('webm', 0, 'latin1') ? 'webm' : 'mkv';
  if (head.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'AVI ') return 'avi';
  if (head.length >= 189 && head[0] === 0x47 && head[188] === 0x47) return 'ts';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x000001ba) return 'mpg';
  if (head.length >= 4 && ascii(0, 3) === 'FLV' && head[3] === 1) return 'flv';
  return null;
}
