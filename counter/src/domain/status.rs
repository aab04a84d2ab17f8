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

use crate::domain::invalid::{Invalid, InvalidInput};

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

    /// Whether a move to this status ends the dossier against the
    /// citizen's wish or by their withdrawal (refused, withdrawn, stopped):
    /// the kiosk asks for confirmation before it, since it cannot be undone.
    pub fn asks_confirmation(self) -> bool {
        matches!(self, Status::REFUSED | Status::WITHDRAWN | Status::STOPPED)
    }

    /// Whether a move to this status needs a note saying why: the moves
    /// that ask for confirmation, and a request to supplement (5), whose
    /// note is what form 02 lists as missing.
    pub fn needs_reason(self) -> bool {
        self.asks_confirmation() || self == Status::SUPPLEMENT
    }

    /// Whether no further change is possible.
    pub fn is_final(self) -> bool {
        self.next().is_empty()
    }

    /// Whether the office's deadline no longer runs: the dossier ended
    /// (refused, withdrawn, stopped, returned) or its result is ready (9).
    /// A dossier past its appointment in any other status is overdue.
    pub fn ends_deadline(self) -> bool {
        self.is_final() || self == Status::COMPLETED
    }

    /// Whether the citizen's personal data may be pruned (once retention
    /// has passed and the DC holds every record of the dossier): only when
    /// nothing about the dossier can change any more.
    pub fn releases_personal_data(self) -> bool {
        self.is_final()
    }

    /// Every status for which `holds` is true, as the list inside an SQL
    /// `status IN (...)`, e.g. `3, 7, 8, 10`: the one place the store's
    /// queries take their status sets from.
    pub fn sql_list(holds: fn(Status) -> bool) -> String {
        (1..=10u8)
            .map(Status)
            .filter(|s| holds(*s))
            .map(|s| s.0.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Refuses a move the table above does not allow, with the clerk's
    /// sentence naming both statuses and what is possible instead.
    pub fn check_move(self, to: Status) -> Result<(), InvalidInput> {
        if self.may_become(to) {
            return Ok(());
        }
        let allowed: Vec<String> = self.next().iter().map(|s| s.to_string()).collect();
        Err(InvalidInput(vec![Invalid::new(
            "status",
            "status_transition",
            format!(
                "Không thể chuyển hồ sơ từ trạng thái \"{}\" sang \"{}\". {}",
                self.name_vi(),
                to.name_vi(),
                if allowed.is_empty() {
                    "Hồ sơ đã kết thúc, không thể thay đổi trạng thái.".to_owned()
                } else {
                    format!("Có thể chuyển sang: {}.", allowed.join(", "))
                }
            ),
        )]))
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
    fn the_status_sets_as_sql() {
        assert_eq!(Status::sql_list(Status::ends_deadline), "3, 7, 8, 9, 10");
        assert_eq!(
            Status::sql_list(Status::releases_personal_data),
            "3, 7, 8, 10"
        );
        assert!(Status::COMPLETED.ends_deadline() && !Status::COMPLETED.releases_personal_data());
        assert!(!Status::IN_PROCESS.ends_deadline());
    }

    #[test]
    fn a_refused_move_says_what_is_possible() {
        assert!(Status::ACCEPTED.check_move(Status::IN_PROCESS).is_ok());
        let e = Status::ACCEPTED
            .check_move(Status::RETURNED)
            .expect_err("not allowed");
        assert_eq!(e.codes(), vec!["status_transition"]);
        assert_eq!(
            e.0[0].message,
            "Không thể chuyển hồ sơ từ trạng thái \"Đã tiếp nhận\" sang \"Đã trả kết quả\". \
             Có thể chuyển sang: 4 (Đang xử lý), 3 (Từ chối), 7 (Công dân rút hồ sơ)."
        );
        let e = Status::RETURNED
            .check_move(Status::IN_PROCESS)
            .expect_err("final");
        assert!(
            e.0[0]
                .message
                .ends_with("Hồ sơ đã kết thúc, không thể thay đổi trạng thái.")
        );
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
