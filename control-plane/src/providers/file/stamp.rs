//! Whether a file may have changed since it was last read, from its
//! metadata alone: with thousands of routes in one file, reading it again on
//! every change elsewhere in the directory is most of a reload.
//!
//! File systems stamp writes with a coarse clock, so two writes in the same
//! tick can leave every stamp as it was. As git does for its index, a stamp
//! is trusted only for a file whose last write came well before the read:
//! any later write then moves the stamps.
//!
//! How long is "well before" depends on the file system's tick. One that
//! keeps sub-second stamps (ext4, XFS, Btrfs, tmpfs, NTFS, exFAT) advances
//! them at least every 10 ms (Linux stamps from the jiffy clock); one that
//! keeps whole seconds (FAT's two, ext3's and HFS+'s one) leaves the
//! sub-second part zero. A file is settled 100 ms after its last write in
//! the first case, 2 s after in the second: files written in a burst are
//! not read again on every change for seconds.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before a read a file must have been last written for its stamps
/// to vouch for it, when the file system keeps sub-second stamps...
const SETTLED_AFTER_FINE: Duration = Duration::from_millis(100);

/// ...and when it keeps whole seconds (FAT rounds to two).
const SETTLED_AFTER_COARSE: Duration = Duration::from_secs(2);

/// A file's identity, size and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    /// The later of the content (mtime) and status (ctime) change times.
    last_change: SystemTime,
    /// How long after `last_change` a read vouches for the content.
    settled_after: Duration,
}

/// A stamp taken just before a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadStamp {
    stamp: FileStamp,
    read_at: SystemTime,
}

impl FileStamp {
    /// The stamp of the file `metadata` describes (links followed).
    pub(super) fn of(metadata: &Metadata) -> Self {
        let at = |seconds: i64, nanoseconds: i64| {
            let since_epoch = Duration::new(
                u64::try_from(seconds).unwrap_or(0),
                u32::try_from(nanoseconds).unwrap_or(0),
            );
            UNIX_EPOCH + since_epoch
        };
        let modified = at(metadata.mtime(), metadata.mtime_nsec());
        let changed = at(metadata.ctime(), metadata.ctime_nsec());
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.size(),
            last_change: modified.max(changed),
            settled_after: settle_time(metadata.mtime_nsec(), metadata.ctime_nsec()),
        }
    }

    /// Stamps a read starting `read_at`.
    pub(super) fn read_at(self, read_at: SystemTime) -> ReadStamp {
        ReadStamp {
            stamp: self,
            read_at,
        }
    }
}

/// How long after its last write a file is settled, from the sub-second
/// parts of its change times: both zero means whole-second stamps.
fn settle_time(mtime_nanoseconds: i64, ctime_nanoseconds: i64) -> Duration {
    if mtime_nanoseconds == 0 && ctime_nanoseconds == 0 {
        SETTLED_AFTER_COARSE
    } else {
        SETTLED_AFTER_FINE
    }
}

impl ReadStamp {
    /// True when the file, now stamped `now`, cannot have changed since
    /// this read.
    pub(super) fn vouches_for(&self, now: &FileStamp) -> bool {
        self.stamp == *now && self.stamp.last_change + self.stamp.settled_after <= self.read_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64, last_change: SystemTime) -> FileStamp {
        FileStamp {
            device: 1,
            inode: 7,
            len,
            last_change,
            settled_after: SETTLED_AFTER_FINE,
        }
    }

    #[test]
    fn only_a_settled_unchanged_file_is_vouched_for() {
        let written = UNIX_EPOCH + Duration::from_secs(1_000);
        let settled_read = stamp(10, written).read_at(written + Duration::from_secs(5));
        assert!(settled_read.vouches_for(&stamp(10, written)));
        assert!(!settled_read.vouches_for(&stamp(11, written)), "size");
        let rewritten = written + Duration::from_secs(6);
        assert!(!settled_read.vouches_for(&stamp(10, rewritten)), "time");
        let replaced = FileStamp {
            inode: 8,
            ..stamp(10, written)
        };
        assert!(!settled_read.vouches_for(&replaced), "another file");

        // Read in the same tick as the write: a second write could keep
        // every stamp, so the file is read again.
        let hasty_read = stamp(10, written).read_at(written + Duration::from_millis(3));
        assert!(!hasty_read.vouches_for(&stamp(10, written)));
    }

    #[test]
    fn whole_second_stamps_settle_only_after_seconds() {
        let written = UNIX_EPOCH + Duration::from_secs(1_000);
        let coarse = FileStamp {
            settled_after: SETTLED_AFTER_COARSE,
            ..stamp(10, written)
        };
        let soon = coarse.read_at(written + Duration::from_millis(500));
        assert!(!soon.vouches_for(&coarse));
        let later = coarse.read_at(written + Duration::from_secs(2));
        assert!(later.vouches_for(&coarse));
    }

    #[test]
    fn the_settle_time_follows_the_stamps_resolution() {
        assert_eq!(settle_time(0, 0), SETTLED_AFTER_COARSE);
        assert_eq!(settle_time(250_000_000, 0), SETTLED_AFTER_FINE);
        assert_eq!(settle_time(0, 4_000_000), SETTLED_AFTER_FINE);
    }

    #[test]
    fn a_stamp_comes_from_the_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "0123456789").unwrap();
        let first = FileStamp::of(&std::fs::metadata(file.path()).unwrap());
        assert_eq!(first.len, 10);
        std::fs::write(file.path(), "012345678").unwrap();
        let second = FileStamp::of(&std::fs::metadata(file.path()).unwrap());
        assert_ne!(first, second);
    }
}
