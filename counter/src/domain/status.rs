//! Dossier status: the national portal's values and the allowed moves.
//!
//! | value | meaning (Vietnamese) | may move to |
//! |-------|----------------------|-------------|
//! | 1 | registered, not yet received (Mới đăng ký) | 2, 3, 7 |
//! | 2 | accepted (Đã tiếp nhận) | 4, 3, 7 |
//! | 3 | refused (Từ chối) | none |
//! | 4 | in process (Đang xử lý) | 5, 6, 8, 9, 7 |
//! | 5 | additional documents requested (Yêu cầu bổ sung) | 4, 7, 8 |
//! | 6 | payment required (Chờ thực hiện nghĩa vụ tài chính) | 4, 7, 8 |
//! | 7 | withdrawn by the citizen (Công dân rút hồ sơ) | none |
//! | 8 | processing stopped (Dừng xử lý) | none |
//! | 9 | completed, result ready (Đã có kết quả) | 10 |
//! | 10 | result returned (Đã trả kết quả) | none |
//!
//! A dossier received at the counter starts at 2: the clerk has checked it
//! and handed out the receipt. "Overdue" is not a status: it is derived from
//! the appointment time.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A national status value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Status(u8);

impl Status {
    /// 1: registered (online), not yet received.
    pub const REGISTERED: Status = Status(1);
    /// 2: accepted at the counter.
    pub const ACCEPTED: Status = Status(2);
    /// 3: refused.
    pub const REFUSED: Status = Status(3);
    /// 4: in process.
    pub const IN_PROCESS: Status = Status(4);
    /// 5: additional documents requested.
    pub const SUPPLEMENT: Status = Status(5);
    /// 6: payment required.
    pub const PAYMENT: Status = Status(6);
    /// 7: withdrawn by the citizen.
    pub const WITHDRAWN: Status = Status(7);
    /// 8: processing stopped.
    pub const STOPPED: Status = Status(8);
    /// 9: completed, result ready.
    pub const COMPLETED: Status = Status(9);
    /// 10: result returned to the citizen.
    pub const RETURNED: Status = Status(10);

    /// The numeric value.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The statuses this one may move to.
    pub fn next(self) -> &'static [Status] {
        use Status as S;
        match self.0 {
            1 => &[S::ACCEPTED, S::REFUSED, S::WITHDRAWN],
            2 => &[S::IN_PROCESS, S::REFUSED, S::WITHDRAWN],
            4 => &[
                S::SUPPLEMENT,
                S::PAYMENT,
                S::STOPPED,
                S::COMPLETED,
                S::WITHDRAWN,
            ],
            5 | 6 => &[S::IN_PROCESS, S::WITHDRAWN, S::STOPPED],
            9 => &[S::RETURNED],
            _ => &[],
        }
    }

    /// Whether the dossier may move from `self` to `to`.
    pub fn may_become(self, to: Status) -> bool {
        self.next().contains(&to)
    }

    /// Whether no further change is possible.
    pub fn is_final(self) -> bool {
        self.next().is_empty()
    }

    /// The Vietnamese name shown to clerks.
    pub fn name_vi(self) -> &'static str {
        match self.0 {
            1 => "Mới đăng ký",
            2 => "Đã tiếp nhận",
            3 => "Từ chối",
            4 => "Đang xử lý",
            5 => "Yêu cầu bổ sung",
            6 => "Chờ thực hiện nghĩa vụ tài chính",
            7 => "Công dân rút hồ sơ",
            8 => "Dừng xử lý",
            9 => "Đã có kết quả",
            _ => "Đã trả kết quả",
        }
    }
}

/// A value outside 1 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a dossier status (1 to 10)")]
pub struct StatusOutOfRange(pub u8);

impl TryFrom<u8> for Status {
    type Error = StatusOutOfRange;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        if (1..=10).contains(&v) {
            Ok(Status(v))
        } else {
            Err(StatusOutOfRange(v))
        }
    }
}

impl From<Status> for u8 {
    fn from(s: Status) -> u8 {
        s.0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name_vi())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_moves_are_allowed() {
        let all: Vec<Status> = (1..=10)
            .map(|v| Status::try_from(v).expect("valid"))
            .collect();
        let allowed: usize = all.iter().map(|s| s.next().len()).sum();
        assert_eq!(allowed, 3 + 3 + 5 + 3 + 3 + 1);
        assert!(Status::ACCEPTED.may_become(Status::IN_PROCESS));
        assert!(!Status::ACCEPTED.may_become(Status::RETURNED));
        assert!(!Status::RETURNED.may_become(Status::IN_PROCESS));
        for s in &all {
            assert!(!s.may_become(*s), "{s} to itself");
        }
        for f in [3, 7, 8, 10] {
            assert!(Status::try_from(f).expect("valid").is_final());
        }
        assert!(Status::try_from(0).is_err() && Status::try_from(11).is_err());
    }

    #[test]
    fn every_status_is_reachable_from_accepted_or_registered() {
        let mut reached = vec![Status::REGISTERED];
        let mut i = 0;
        while i < reached.len() {
            for n in reached[i].next() {
                if !reached.contains(n) {
                    reached.push(*n);
                }
            }
            i += 1;
        }
        assert_eq!(reached.len(), 10);
    }
}
