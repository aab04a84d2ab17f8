//! Logged-in clerks, their CSRF tokens, and the lockout after repeated
//! failed logins ([`motcua_common::login`]). In memory: a restart logs
//! everybody out, which is what a counter box that lost power should do
//! anyway.

use motcua_protocol::StaffId;

pub use motcua_common::login::{Locked, same, token};

/// The session cookie's name.
pub const COOKIE: &str = "motcua_phien";
/// The login form's double-submit cookie (CSRF before a session exists).
pub const LOGIN_COOKIE: &str = "motcua_dangnhap";

/// Who a kiosk session belongs to.
#[derive(Debug, Clone)]
pub struct Clerk {
    /// The staff member.
    pub staff: StaffId,
    /// Their name, for the header.
    pub name: String,
}

/// A logged-in clerk (derefs to [`Clerk`]).
pub type Session = motcua_common::login::Session<Clerk>;

/// The kiosk's sessions and failure counts.
pub type Sessions = motcua_common::login::Sessions<Clerk>;
