// ipvsadm -R's reading of standard input (config_stream.c): lines split into argument vectors, quirks included.

/**
 * Split -R input into one argument vector per line, as ipvsadm's config_stream_read does:
 * tokens are separated by space, tab or CR; every token that is exactly "ipvsadm" is dropped; lines
 * left without tokens are skipped. '#' is NOT a comment (ipvsadm's check never fires), so a comment
 * line reaches the option parser. An unterminated last line is dropped when it ends in two or more
 * blanks (the reader hits end of file while skipping them and discards the line).
 */
export function restoreLines(text: string): string[][] {
  const out: string[][] = [];
  const segs = text.split('\n');
  const lastTerminated = text.endsWith('\n');
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const unterminated = i === segs.length - 1;
    if (unterminated && (lastTerminated || seg === '')) break;
    if (unterminated && /[ \t\r]{2,}$/.test(seg)) break;
    const tokens = seg.split(/[ \t\r]+/).filter((t) => t !== '' && t !== 'ipvsadm');
    if (tokens.length > 0) out.push(tokens);
  }
  return out;
}
