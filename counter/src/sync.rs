//! The sync loop's decisions, without I/O: what to send next, when to send
//! again, when to report health, presence on connect and stop.
//!
//! [`Machine`] is fed [`Event`]s and the time, and hands back [`Action`]s
//! one at a time from [`Machine::poll_action`]; the async shell in
//! `motcua::sync::run` (crate `motcua-agent`) carries them out (MQTT client, store reader and writer,
//! downstream, health probe) and answers those that have a result with
//! another event. Nothing here reads a clock, touches a socket or a file,
//! or knows MQTT or the store: the time is always passed in, so the rules
//! are tested with fake time and no broker.
//!
//! # The rules
//! - Connections are numbered (generations). Events of a connection the
//!   machine has replaced are ignored.
//! - On every connection: announce (`online`, retained, and the
//!   subscriptions), send again from the seq after the last receipt, and
//!   report health at once.
//! - Sending: envelopes after `sent`, in seq order, never more than
//!   `window` unreceipted, at most `batch` per read. After every outside
//!   event (connection, loss, receipt, message, tick) the machine fills the
//!   window as far as the store and the client's queue allow.
//! - A receipt advancing `through` is progress, and opens room.
//! - No progress for longer than `resend_after` while records are out:
//!   `Machine::on_stall` decides what to do: send again from
//!   `through + 1` on the same connection, which stays up (a slow DC is
//!   not a lost link, and a dropped connection would make the broker
//!   publish the counter's `offline` will). Nothing out, no resend,
//!   however long.
//! - Health: a report every `health_interval` while online; at once on
//!   connecting, on a new catalogue or status updates from the DC, on a
//!   settings change of the interval, and when a backlog the last report
//!   showed is fully receipted.
//! - A lost connection is offline: no sends, no reports, until the next
//!   connection. A stop announces `offline` and ends the machine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What sync reports about itself (for status displays and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Connected to the broker.
    pub online: bool,
    /// Every seq up to this one is receipted.
    pub through: u64,
    /// Highest seq sent on the current connection.
    pub sent: u64,
    /// When the last valid receipt arrived (monotonic, not wall time).
    pub last_receipt: Option<Duration>,
    /// Receipts refused (bad signature, fork, wrong device...).
    pub refused_receipts: u64,
    /// Downstream messages refused (verification, device, replay...).
    pub refused_down: u64,
}

/// The settings the machine decides with (a subset of `SyncConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most envelopes sent and not yet receipted.
    pub window: usize,
    /// Most envelopes read per send (one MQTT message, or a few when the
    /// bundle byte limit splits them).
    pub batch: usize,
    /// Without a new receipt for this long, send again from the last one.
    pub resend_after: Duration,
}

/// What happens to the machine: from the network, the shell's timer, or
/// the shell's answer to an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Connection `generation` is up (the broker's CONNACK).
    Connected {
        /// The connection it came from.
        generation: u64,
    },
    /// Connection `generation` is down; its client retries by itself.
    Lost {
        /// The connection it came from.
        generation: u64,
    },
    /// A receipt arrived on connection `generation`, not yet verified.
    Receipt {
        /// The connection it came from.
        generation: u64,
        /// The receipt as received.
        bytes: Vec<u8>,
    },
    /// A message from the DC (catalogue, status updates, settings)
    /// arrived on connection `generation`, not yet verified.
    Down {
        /// The connection it came from.
        generation: u64,
        /// Its topic.
        topic: String,
        /// Its payload as received.
        payload: Vec<u8>,
    },
    /// The shell's timer: time to check the health schedule and stalls.
    Tick,
    /// Stop: announce `offline` and end.
    Stop,
    /// Answer to [`Action::Announce`]: the client could not queue it.
    AnnounceFailed,
    /// Answer to [`Action::ApplyReceipt`]: the writer accepted it; every
    /// seq up to `through` is now receipted.
    ReceiptApplied {
        /// The receipted-through seq the writer reports.
        through: u64,
    },
    /// Answer to [`Action::ApplyReceipt`]: refused (signature, fork...).
    ReceiptRefused,
    /// Answer to [`Action::ApplyDown`].
    DownApplied(DownOutcome),
    /// Answer to [`Action::ReportHealth`]: the report was made.
    HealthReported {
        /// It counted unsynced records.
        backlog: bool,
    },
    /// Answer to [`Action::Send`].
    Sent(Sent),
}

/// What applying a message from the DC came to, as far as sync cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownOutcome {
    /// Refused whole; nothing of it applied.
    Refused,
    /// Settings in force, with this health interval.
    Settings {
        /// The health interval now in force.
        health_interval: Duration,
    },
    /// A new catalogue or status updates: the next health report shows
    /// them, so it goes out at once.
    Applied,
    /// Already applied, or not for the agent.
    Unchanged,
}

/// How an [`Action::Send`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Every envelope read was queued; the last had this seq.
    All {
        /// The highest seq queued.
        last: u64,
    },
    /// The client's queue filled: envelopes up to `last` were queued
    /// (none when `None`), the rest wait for a later pass.
    QueueFull {
        /// The highest seq queued, if any.
        last: Option<u64>,
    },
    /// The store has nothing unsynced after the seq asked for.
    Nothing,
}

/// Why a connection is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// The announcement or the subscriptions could not be queued.
    AnnounceFailed,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish `online` (retained) on the device's status topic and
    /// subscribe to the agent's filters. Answer [`Event::AnnounceFailed`]
    /// when the client cannot queue them.
    Announce,
    /// Hand this receipt to the writer. Answer [`Event::ReceiptApplied`]
    /// or [`Event::ReceiptRefused`].
    ApplyReceipt(Vec<u8>),
    /// Verify and apply this message from the DC. Answer
    /// [`Event::DownApplied`].
    ApplyDown {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Make a health report and publish it (QoS 0). Answer
    /// [`Event::HealthReported`].
    ReportHealth,
    /// Read up to `max` unsynced envelopes after seq `after` and publish
    /// them in order. Answer [`Event::Sent`].
    Send {
        /// Send the envelopes after this seq.
        after: u64,
        /// At most this many.
        max: usize,
    },
    /// No receipt for `resend_after` while records were out: sending starts
    /// again after `through` on the same connection (the [`Action::Send`]s
    /// follow). Nothing to answer; the shell says so in its log.
    Resend {
        /// Receipted through this seq.
        through: u64,
        /// Sent up to this seq before.
        sent: u64,
    },
    /// Drop the current connection with everything queued on it and open
    /// connection `generation`.
    Replace {
        /// The new connection's number.
        generation: u64,
        /// Why.
        why: Replace,
    },
    /// A clean stop: publish `offline` (retained), then DISCONNECT.
    Leave,
}

/// Where filling the window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Nothing to do until the next outside event.
    Idle,
    /// Fill once the queued actions are done.
    Due,
    /// A [`Action::Send`] is out; waiting for [`Event::Sent`].
    Waiting,
}

/// The sync loop's state and rules. See the module doc.
#[derive(Debug)]
pub struct Machine {
    limits: Limits,
    health_interval: Duration,
    /// The current connection's number; the first is 1.
    generation: u64,
    online: bool,
    stopped: bool,
    through: u64,
    sent: u64,
    /// When `through` last advanced, or sending last restarted.
    progress: Instant,
    started: Instant,
    last_receipt: Option<Duration>,
    refused_receipts: u64,
    refused_down: u64,
    next_health: Option<Instant>,
    /// The last health report counted unsynced records.
    reported_backlog: bool,
    fill: Fill,
    actions: VecDeque<Action>,
}

impl Machine {
    /// A machine for a store receipted through seq `through`, offline,
    /// waiting for connection 1, started at `now`.
    pub fn new(limits: Limits, health_interval: Duration, through: u64, now: Instant) -> Machine {
        Machine {
            limits,
            health_interval,
            generation: 1,
            online: false,
            stopped: false,
            through,
            sent: through,
            progress: now,
            started: now,
            last_receipt: None,
            refused_receipts: 0,
            refused_down: 0,
            next_health: None,
            reported_backlog: false,
            fill: Fill::Idle,
            actions: VecDeque::new(),
        }
    }

    /// The current connection's number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the machine has stopped (after [`Event::Stop`]).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// What sync reports about itself.
    pub fn state(&self) -> SyncState {
        SyncState {
            online: self.online,
            through: self.through,
            sent: self.sent,
            last_receipt: self.last_receipt,
            refused_receipts: self.refused_receipts,
            refused_down: self.refused_down,
        }
    }

    /// Takes in what happened at `now`. Then call [`Machine::poll_action`]
    /// until it returns `None`, answering the actions that ask for it.
    pub fn handle(&mut self, event: Event, now: Instant) {
        if self.stopped {
            return;
        }
        match event {
            Event::Connected { generation }
            | Event::Lost { generation }
            | Event::Receipt { generation, .. }
            | Event::Down { generation, .. }
                if generation != self.generation =>
            {
                // A connection already replaced; the window is still
                // filled, as after any outside event.
                self.fill = Fill::Due;
            }
            Event::Connected { .. } => {
                self.fill = Fill::Due;
                self.online = true;
                self.actions.push_back(Action::Announce);
                self.restart_sending(now);
                self.next_health = Some(now);
            }
            Event::Lost { .. } => {
                self.fill = Fill::Due;
                self.online = false;
            }
            Event::Receipt { bytes, .. } => {
                self.fill = Fill::Due;
                self.actions.push_back(Action::ApplyReceipt(bytes));
            }
            Event::Down { topic, payload, .. } => {
                self.fill = Fill::Due;
                self.actions.push_back(Action::ApplyDown { topic, payload });
            }
            Event::Tick => {
                self.fill = Fill::Due;
                self.tick(now);
            }
            Event::Stop => {
                self.stopped = true;
                self.online = false;
                self.fill = Fill::Idle;
                self.actions.clear();
                self.actions.push_back(Action::Leave);
            }
            Event::AnnounceFailed => {
                self.replace(Replace::AnnounceFailed);
            }
            Event::ReceiptApplied { through } => {
                self.last_receipt = Some(now.saturating_duration_since(self.started));
                if through > self.through {
                    self.through = through;
                    self.progress = now;
                }
                self.sent = self.sent.max(self.through);
            }
            Event::ReceiptRefused => self.refused_receipts += 1,
            Event::DownApplied(outcome) => match outcome {
                DownOutcome::Refused => self.refused_down += 1,
                DownOutcome::Settings { health_interval } => {
                    if health_interval != self.health_interval {
                        self.health_interval = health_interval;
                        self.next_health = Some(now);
                    }
                }
                DownOutcome::Applied => self.next_health = Some(now),
                DownOutcome::Unchanged => {}
            },
            Event::HealthReported { backlog } => self.reported_backlog = backlog,
            Event::Sent(sent) => match sent {
                Sent::All { last } => {
                    self.sent = last;
                    // Keep filling: the window may still have room.
                    self.fill = Fill::Due;
                }
                Sent::QueueFull { last } => {
                    self.sent = last.unwrap_or(self.sent);
                    self.filled(now);
                }
                Sent::Nothing => self.filled(now),
            },
        }
    }

    /// The next action for the shell, if any. Once the queued actions are
    /// done, fills the window with [`Action::Send`] while online.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if self.fill != Fill::Due {
            return None;
        }
        if !self.online {
            self.fill = Fill::Idle;
            return None;
        }
        let out = usize::try_from(self.sent - self.through).unwrap_or(usize::MAX);
        let room = self.limits.window.saturating_sub(out);
        if room == 0 {
            self.filled(now);
            return None;
        }
        self.fill = Fill::Waiting;
        Some(Action::Send {
            after: self.sent,
            max: room.min(self.limits.batch),
        })
    }

    /// The timer: health report when due, then the stall rule.
    fn tick(&mut self, now: Instant) {
        if self.online && self.next_health.is_some_and(|t| t <= now) {
            self.next_health = Some(now + self.health_interval);
            self.actions.push_back(Action::ReportHealth);
        }
        if self.online
            && self.sent > self.through
            && now.saturating_duration_since(self.progress) > self.limits.resend_after
        {
            self.on_stall(now);
        }
    }

    /// Receipts stopped for `resend_after` while records are out: the DC
    /// is slow or lost them, or the link stalled. They are sent again from
    /// the last receipt on the same connection. The connection is kept: a
    /// slow DC is no reason to drop it, and dropping it would make the
    /// broker publish the counter's last will, `offline`, although it is
    /// up. A link that is really dead is found by the MQTT keep-alive,
    /// whose reconnection resends as any connection does; a client queue
    /// still full of the earlier sends takes the new ones as room opens
    /// (duplicates the DC receipts again). What a stall does is decided
    /// here and nowhere else.
    fn on_stall(&mut self, now: Instant) {
        self.actions.push_back(Action::Resend {
            through: self.through,
            sent: self.sent,
        });
        self.restart_sending(now);
    }

    /// Drops the current connection for a new one; offline until it is up.
    fn replace(&mut self, why: Replace) {
        self.generation += 1;
        self.online = false;
        self.actions.push_back(Action::Replace {
            generation: self.generation,
            why,
        });
    }

    /// Sending starts again just after the last receipt.
    fn restart_sending(&mut self, now: Instant) {
        self.sent = self.through;
        self.progress = now;
    }

    /// The window is as full as it gets for now. The last report showed a
    /// backlog and every record is now receipted: report at once rather
    /// than a whole interval later.
    fn filled(&mut self, now: Instant) {
        self.fill = Fill::Idle;
        if self.reported_backlog && self.sent == self.through {
            self.reported_backlog = false;
            self.next_health = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTH: Duration = Duration::from_secs(60);
    const RESEND: Duration = Duration::from_secs(30);

    /// The machine with a model of everything around it: a store whose
    /// journal ends at `head`, a client queue taking `queue` more envelopes
    /// (unlimited when `None`), and fake time.
    struct Shell {
        m: Machine,
        t0: Instant,
        now: Instant,
        head: u64,
        queue: Option<u64>,
        announce_fails: bool,
        down: DownOutcome,
    }

    /// A receipt the model writer accepts: every seq through `n`.
    fn receipt(n: u64) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    fn send(after: u64, max: usize) -> Action {
        Action::Send { after, max }
    }

    fn limits(window: usize, batch: usize) -> Limits {
        Limits {
            window,
            batch,
            resend_after: RESEND,
        }
    }

    impl Shell {
        fn new(limits: Limits, through: u64, head: u64) -> Shell {
            let t0 = Instant::now();
            Shell {
                m: Machine::new(limits, HEALTH, through, t0),
                t0,
                now: t0,
                head,
                queue: None,
                announce_fails: false,
                down: DownOutcome::Unchanged,
            }
        }

        /// Moves the fake clock to `ms` milliseconds after the start.
        fn at(&mut self, ms: u64) -> &mut Shell {
            self.now = self.t0 + Duration::from_millis(ms);
            self
        }

        /// Feeds `event`, carries out every action the way the real shell
        /// would against the model, and returns the actions in order.
        fn on(&mut self, event: Event) -> Vec<Action> {
            let now = self.now;
            self.m.handle(event, now);
            let mut done = Vec::new();
            while let Some(action) = self.m.poll_action(now) {
                assert!(done.len() < 1000, "the machine keeps asking: {done:?}");
                if let Some(answer) = self.answer(&action) {
                    self.m.handle(answer, now);
                }
                done.push(action);
            }
            done
        }

        fn answer(&mut self, action: &Action) -> Option<Event> {
            match action {
                Action::Announce => self.announce_fails.then_some(Event::AnnounceFailed),
                Action::ApplyReceipt(bytes) => Some(match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(n) => Event::ReceiptApplied {
                        through: u64::from_le_bytes(n),
                    },
                    Err(_) => Event::ReceiptRefused,
                }),
                Action::ApplyDown { .. } => Some(Event::DownApplied(self.down)),
                Action::ReportHealth => Some(Event::HealthReported {
                    backlog: self.head > self.m.state().through,
                }),
                Action::Send { after, max } => {
                    let available = self.head.saturating_sub(*after).min(*max as u64);
                    if available == 0 {
                        return Some(Event::Sent(Sent::Nothing));
                    }
                    let taken = self.queue.map_or(available, |q| q.min(available));
                    if let Some(q) = &mut self.queue {
                        *q -= taken;
                    }
                    let last = (taken > 0).then_some(after + taken);
                    Some(Event::Sent(if taken == available {
                        Sent::All {
                            last: after + taken,
                        }
                    } else {
                        Sent::QueueFull { last }
                    }))
                }
                Action::Resend { .. } | Action::Replace { .. } | Action::Leave => None,
            }
        }

        fn out(&self) -> u64 {
            let s = self.m.state();
            s.sent - s.through
        }
    }

    fn connected(generation: u64) -> Event {
        Event::Connected { generation }
    }

    fn receipted(generation: u64, through: u64) -> Event {
        Event::Receipt {
            generation,
            bytes: receipt(through),
        }
    }

    fn down(generation: u64) -> Event {
        Event::Down {
            generation,
            topic: "down".into(),
            payload: vec![1],
        }
    }

    fn reports(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| **a == Action::ReportHealth)
            .count()
    }

    fn sends(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .count()
    }

    #[test]
    fn starts_offline_at_the_last_receipt_and_sends_nothing() {
        let mut s = Shell::new(limits(10, 4), 7, 20);
        assert_eq!(s.m.generation(), 1);
        assert_eq!(
            s.m.state(),
            SyncState {
                through: 7,
                sent: 7,
                ..SyncState::default()
            }
        );
        assert_eq!(s.at(100).on(Event::Tick), vec![]);
        assert_eq!(s.m.state().sent, 7);
    }

    #[test]
    fn connecting_announces_then_fills_the_window_in_batches() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        assert_eq!(
            s.on(connected(1)),
            vec![Action::Announce, send(0, 4), send(4, 4), send(8, 2)]
        );
        let state = s.m.state();
        assert!(state.online);
        assert_eq!((state.through, state.sent), (0, 10));
    }

    #[test]
    fn the_window_never_exceeds_window_unreceipted_seqs() {
        let mut s = Shell::new(limits(10, 3), 0, 1000);
        s.on(connected(1));
        let mut through = 0;
        for step in 0..200u64 {
            // Receipts of varying length, ticks and noise in between.
            let events = match step % 4 {
                0 => {
                    through = (through + step % 7).min(s.m.state().sent);
                    receipted(1, through)
                }
                1 => Event::Tick,
                2 => down(1),
                _ => receipted(1, through),
            };
            s.at(step * 10).on(events);
            assert!(s.out() <= 10, "step {step}: {:?}", s.m.state());
        }
        assert!(s.m.state().through > 100);
    }

    #[test]
    fn a_receipt_advancing_through_opens_room() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        assert_eq!(s.out(), 10);
        // A full window: a tick sends nothing.
        assert_eq!(sends(&s.at(100).on(Event::Tick)), 0);
        assert_eq!(
            s.at(200).on(receipted(1, 5)),
            vec![Action::ApplyReceipt(receipt(5)), send(10, 4), send(14, 1)]
        );
        let state = s.m.state();
        assert_eq!((state.through, state.sent), (5, 15));
        assert_eq!(state.last_receipt, Some(Duration::from_millis(200)));
    }

    #[test]
    fn a_receipt_not_advancing_through_opens_no_room_but_counts_as_a_receipt() {
        let mut s = Shell::new(limits(10, 4), 3, 100);
        s.on(connected(1));
        assert_eq!(
            s.at(50).on(receipted(1, 2)),
            vec![Action::ApplyReceipt(receipt(2))]
        );
        let state = s.m.state();
        assert_eq!((state.through, state.sent), (3, 13));
        assert_eq!(state.last_receipt, Some(Duration::from_millis(50)));
    }

    #[test]
    fn a_refused_receipt_is_counted_and_changes_nothing_else() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        let event = Event::Receipt {
            generation: 1,
            bytes: vec![0xff],
        };
        assert_eq!(s.on(event), vec![Action::ApplyReceipt(vec![0xff])]);
        let state = s.m.state();
        assert_eq!(state.refused_receipts, 1);
        assert_eq!(
            (state.through, state.sent, state.last_receipt),
            (0, 10, None)
        );
    }

    #[test]
    fn no_receipt_for_resend_after_while_records_are_out_resends_on_the_same_connection() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        assert_eq!(reports(&s.at(0).on(Event::Tick)), 1);
        s.at(1_000).on(receipted(1, 4));
        // Not yet: the stall must last longer than resend_after.
        let at_limit = 1_000 + RESEND.as_millis() as u64;
        assert_eq!(s.at(at_limit).on(Event::Tick), vec![]);
        // Sent again from through + 1, the connection kept.
        assert_eq!(
            s.at(at_limit + 1).on(Event::Tick),
            vec![
                Action::Resend {
                    through: 4,
                    sent: 14
                },
                send(4, 4),
                send(8, 4),
                send(12, 2)
            ]
        );
        let state = s.m.state();
        assert!(state.online);
        assert_eq!((state.through, state.sent), (4, 14));
        assert_eq!(s.m.generation(), 1);
        // And again only after another whole resend_after without progress.
        let resent = |a: &[Action]| {
            a.iter()
                .any(|a| matches!(a, Action::Resend { through: 4, .. }))
        };
        let quiet = s
            .at(at_limit + 1 + RESEND.as_millis() as u64)
            .on(Event::Tick);
        assert!(!resent(&quiet), "{quiet:?}");
        let again = s
            .at(at_limit + 2 + RESEND.as_millis() as u64)
            .on(Event::Tick);
        assert!(resent(&again), "{again:?}");
    }

    #[test]
    fn a_stall_and_a_due_report_in_one_tick_report_then_resend() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        s.at(0).on(Event::Tick);
        assert_eq!(
            s.at(HEALTH.as_millis() as u64).on(Event::Tick),
            vec![
                Action::ReportHealth,
                Action::Resend {
                    through: 0,
                    sent: 10
                },
                send(0, 4),
                send(4, 4),
                send(8, 2),
            ]
        );
    }

    #[test]
    fn nothing_out_means_no_resend_however_long() {
        let mut s = Shell::new(limits(10, 4), 5, 5);
        assert_eq!(s.on(connected(1)), vec![Action::Announce, send(5, 4)]);
        for hour in 1..=24 {
            let actions = s.at(hour * 3_600_000).on(Event::Tick);
            assert!(
                actions.iter().all(|a| !matches!(a, Action::Replace { .. })),
                "{actions:?}"
            );
        }
        assert!(s.m.state().online);
        assert_eq!(s.m.generation(), 1);
    }

    #[test]
    fn all_receipted_means_no_resend_however_long() {
        let mut s = Shell::new(limits(10, 4), 0, 6);
        s.on(connected(1));
        s.at(10).on(receipted(1, 6));
        for minute in 1..=60 {
            let actions = s.at(minute * 60_000).on(Event::Tick);
            assert!(
                actions.iter().all(|a| !matches!(a, Action::Replace { .. })),
                "{actions:?}"
            );
        }
    }

    #[test]
    fn a_connection_resets_sent_to_through_and_reports_health_at_once() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        s.at(10).on(receipted(1, 3));
        // Report at once, then not before the interval.
        assert_eq!(reports(&s.at(20).on(Event::Tick)), 1);
        assert_eq!(reports(&s.at(30).on(Event::Tick)), 0);
        s.at(40).on(Event::Lost { generation: 1 });
        assert_eq!(s.m.state().sent, 13);
        // Sent again from through + 1, whatever went out before.
        assert_eq!(
            s.at(1_000).on(connected(1)),
            vec![Action::Announce, send(3, 4), send(7, 4), send(11, 2)]
        );
        let state = s.m.state();
        assert!(state.online);
        assert_eq!((state.through, state.sent), (3, 13));
        assert_eq!(reports(&s.at(1_000).on(Event::Tick)), 1);
    }

    #[test]
    fn health_repeats_every_interval_only_while_online() {
        let mut s = Shell::new(limits(10, 4), 0, 0);
        let interval = HEALTH.as_millis() as u64;
        // Offline from the start: never.
        assert_eq!(reports(&s.at(interval * 3).on(Event::Tick)), 0);
        s.at(0).on(connected(1));
        let mut made = 0;
        for ms in (0..=interval * 3).step_by(100) {
            made += reports(&s.at(ms).on(Event::Tick));
        }
        assert_eq!(made, 4, "at 0, 1, 2 and 3 intervals");
        s.on(Event::Lost { generation: 1 });
        for ms in (interval * 3..=interval * 10).step_by(1_000) {
            assert_eq!(reports(&s.at(ms).on(Event::Tick)), 0);
        }
    }

    #[test]
    fn a_backlog_reported_then_fully_receipted_reports_early() {
        let mut s = Shell::new(limits(10, 4), 0, 6);
        s.on(connected(1));
        assert_eq!(reports(&s.at(0).on(Event::Tick)), 1, "backlog of 6");
        s.at(1_000).on(receipted(1, 4));
        assert_eq!(reports(&s.at(1_100).on(Event::Tick)), 0, "still 2 out");
        s.at(2_000).on(receipted(1, 6));
        assert_eq!(reports(&s.at(2_100).on(Event::Tick)), 1, "all receipted");
        // Once: the report just made showed no backlog.
        s.at(3_000).on(receipted(1, 6));
        assert_eq!(reports(&s.at(3_100).on(Event::Tick)), 0);
    }

    #[test]
    fn no_backlog_reported_means_no_early_report() {
        let mut s = Shell::new(limits(10, 4), 0, 0);
        s.on(connected(1));
        s.at(0).on(Event::Tick);
        s.head = 2;
        s.at(100).on(Event::Tick);
        s.at(200).on(receipted(1, 2));
        assert_eq!(reports(&s.at(300).on(Event::Tick)), 0);
    }

    #[test]
    fn a_settings_change_of_the_interval_reschedules_the_report() {
        let mut s = Shell::new(limits(10, 4), 0, 0);
        s.on(connected(1));
        s.at(0).on(Event::Tick);
        // The same interval: nothing changes.
        s.down = DownOutcome::Settings {
            health_interval: HEALTH,
        };
        s.at(1_000).on(down(1));
        assert_eq!(reports(&s.at(1_100).on(Event::Tick)), 0);
        // A new one: report at once, then at the new interval.
        s.down = DownOutcome::Settings {
            health_interval: Duration::from_secs(5),
        };
        s.at(2_000).on(down(1));
        assert_eq!(reports(&s.at(2_100).on(Event::Tick)), 1);
        assert_eq!(reports(&s.at(7_000).on(Event::Tick)), 0);
        assert_eq!(reports(&s.at(7_100).on(Event::Tick)), 1);
    }

    #[test]
    fn a_catalogue_or_status_updates_report_at_once_and_refusals_are_counted() {
        let mut s = Shell::new(limits(10, 4), 0, 0);
        s.on(connected(1));
        s.at(0).on(Event::Tick);
        s.down = DownOutcome::Applied;
        assert_eq!(
            s.at(1_000).on(down(1)),
            vec![
                Action::ApplyDown {
                    topic: "down".into(),
                    payload: vec![1]
                },
                send(0, 4)
            ]
        );
        assert_eq!(reports(&s.at(1_100).on(Event::Tick)), 1);
        s.down = DownOutcome::Refused;
        s.at(2_000).on(down(1));
        s.down = DownOutcome::Unchanged;
        s.at(3_000).on(down(1));
        assert_eq!(reports(&s.at(3_100).on(Event::Tick)), 0);
        assert_eq!(s.m.state().refused_down, 1);
    }

    #[test]
    fn events_of_a_replaced_connection_are_ignored() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        s.at(10).on(Event::AnnounceFailed);
        assert_eq!(s.m.generation(), 2);
        assert_eq!(s.on(connected(1)), vec![]);
        assert_eq!(s.on(receipted(1, 5)), vec![]);
        assert_eq!(s.on(down(1)), vec![]);
        assert!(!s.m.state().online);
        assert_eq!(s.m.state().through, 0);
        s.on(connected(2));
        assert_eq!(s.on(Event::Lost { generation: 1 }), vec![]);
        assert!(s.m.state().online);
    }

    #[test]
    fn an_event_of_a_replaced_connection_still_fills_the_window() {
        let mut s = Shell::new(limits(10, 4), 0, 0);
        s.on(connected(1));
        s.at(10).on(Event::AnnounceFailed);
        s.on(connected(2));
        s.head = 3;
        // Filled until the store has nothing more.
        assert_eq!(s.on(receipted(1, 2)), vec![send(0, 4), send(3, 4)]);
        assert_eq!(s.m.state().sent, 3);
    }

    #[test]
    fn lost_is_offline_and_sends_nothing() {
        let mut s = Shell::new(limits(10, 4), 0, 4);
        s.on(connected(1));
        s.on(Event::Lost { generation: 1 });
        assert!(!s.m.state().online);
        s.head = 100;
        assert_eq!(
            s.at(10).on(receipted(1, 4)),
            vec![Action::ApplyReceipt(receipt(4))]
        );
        assert_eq!(s.at(20).on(Event::Tick), vec![]);
        s.down = DownOutcome::Applied;
        assert_eq!(sends(&s.at(30).on(down(1))), 0);
        // Never a stall while offline, however long.
        assert_eq!(s.at(3_600_000).on(Event::Tick), vec![]);
        assert_eq!(s.m.state().sent, 4);
    }

    #[test]
    fn an_announcement_the_client_cannot_queue_replaces_the_connection() {
        let mut s = Shell::new(limits(10, 4), 2, 100);
        s.announce_fails = true;
        assert_eq!(
            s.on(connected(1)),
            vec![
                Action::Announce,
                Action::Replace {
                    generation: 2,
                    why: Replace::AnnounceFailed
                }
            ]
        );
        let state = s.m.state();
        assert!(!state.online);
        assert_eq!((state.through, state.sent), (2, 2));
        s.announce_fails = false;
        assert_eq!(
            s.on(connected(2)),
            vec![Action::Announce, send(2, 4), send(6, 4), send(10, 2)]
        );
    }

    #[test]
    fn a_full_client_queue_stops_the_fill_until_the_next_event() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.queue = Some(6);
        assert_eq!(
            s.on(connected(1)),
            vec![Action::Announce, send(0, 4), send(4, 4)]
        );
        assert_eq!(s.m.state().sent, 6);
        s.queue = Some(0);
        assert_eq!(
            s.at(100).on(Event::Tick),
            vec![Action::ReportHealth, send(6, 4)]
        );
        assert_eq!(s.m.state().sent, 6);
        s.queue = None;
        assert_eq!(s.at(200).on(Event::Tick), vec![send(6, 4)]);
        assert_eq!(s.m.state().sent, 10);
    }

    #[test]
    fn stop_leaves_and_ends_the_machine() {
        let mut s = Shell::new(limits(10, 4), 0, 100);
        s.on(connected(1));
        assert_eq!(s.at(10).on(Event::Stop), vec![Action::Leave]);
        assert!(s.m.stopped());
        assert!(!s.m.state().online);
        assert_eq!(s.at(20).on(connected(1)), vec![]);
        assert_eq!(s.at(3_600_000).on(Event::Tick), vec![]);
    }
}
