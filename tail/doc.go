// Package tail follows growing log files, like tail -F, and yields their
// complete lines as one io.Reader, for `vigil follow` to feed replay.Run.
//
// # Design
//
// There is no goroutine: Read itself polls. It hands out the lines already
// read, then reads every file once more (round robin, starting after the
// file that gave lines last, so a busy file cannot starve the others) and
// only when no file has anything new does it sleep for Options.Poll or
// until ctx is done. Files are read with ReadAt at the follower's own
// offset, at most 128 KiB at a time, so a caller that stops reading holds
// up the files and nothing piles up in memory: each file's buffer holds
// at most one unfinished line (at most MaxLine bytes; a longer one is
// streamed past and counted) and one chunk. Standard library only, so the
// files are polled, not watched.
//
// # Lines
//
// A line is passed on once its '\n' has been read, never in parts, and the
// lines of one file keep their order; lines of different files interleave
// in the order the polls find them. Read returns len(p) only when more is
// already at hand, which is what replay's Live mode needs: it judges what
// it has when a read comes back short.
//
// Two cases of an unfinished last line:
//   - A file that has been left after a rotation or deletion will not be
//     written to again: its last line is passed on with a '\n' added
//     (counted as Unterminated), so a final record without newline is not
//     lost; if it is a torn write, the consumer sees a bad line.
//   - At shutdown, the file is still live and its writer may be in the
//     middle of the line: it is not passed on (counted as Pending). A torn
//     JSON object would only become a bad line.
//
// When following starts at the end of an existing file (the default), it
// starts at the beginning of the file's unfinished last line, if any, so
// the first line passed on is whole.
//
// # Rotation and truncation
//
// When a file is at its end, at most twice per poll interval, its path is
// checked:
//   - Rename and create (logrotate's default): os.Stat of the path no
//     longer matches the open file (os.SameFile: device and inode). The
//     open file is read on to its end; it is left for the new one as soon
//     as the new one has data (its writer has reopened the log, so the old
//     file is done), or once the old one has given nothing for RotateWait
//     (the writer may still append to the renamed file until it reopens).
//     The new file is read from its start, so nothing written on either
//     side of the rotation is lost or read twice. Only the named paths are
//     followed: rotated copies (app.log.1, app.log.2.gz) are not.
//   - Deletion: the same, except that the path is then reported Missing
//     and waited for; a file that appears there is read from its start.
//   - copytruncate: the open file is shorter than the offset read, so it
//     is read again from offset 0 (reported as Truncated); the unfinished
//     line held from before is dropped. As with any poller, a file that is
//     truncated and grows past the old offset between two polls cannot be
//     told from one that grew, and lines written between logrotate's copy
//     and its truncation are lost, a flaw of copytruncate itself.
//
// # Shutdown
//
// Once ctx is done, Read reads every file up to its size at that moment
// (nothing that was already written is dropped), does not switch files
// any more, and then returns io.EOF and closes the files.
package tail
