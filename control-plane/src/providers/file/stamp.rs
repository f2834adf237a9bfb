//! Whether a file may have changed since it was last read, from its
//! metadata alone: with thousands of routes in one file, reading it again on
//! every change elsewhere in the directory is most of a reload.
//!
//! File systems stamp writes with a coarse clock, so two writes in the same
//! tick can leave every stamp as it was. As git does for its index, a stamp
//! is trusted only for a file whose last write came well before the read:
//! any later write then moves the stamps.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before a read a file must have been last written for its stamps
/// to vouch for it.
const SETTLED_AFTER: Duration = Duration::from_secs(2);

/// A file's identity, size and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    /// The later of the content (mtime) and status (ctime) change times.
    last_change: SystemTime,
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

impl ReadStamp {
    /// True when the file, now stamped `now`, cannot have changed since
    /// this read.
    pub(super) fn vouches_for(&self, now: &FileStamp) -> bool {
        self.stamp == *now && self.stamp.last_change + SETTLED_AFTER <= self.read_at
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
