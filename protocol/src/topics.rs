//! Every MQTT topic of the protocol, and its QoS. No other module spells a
//! topic.
//!
//! All per-device topics sit under `motcua/v1/d/{device}/`, so one broker
//! ACL pattern (`motcua/v1/d/%u/#` with the certificate's identity as user
//! name) confines each device to its own topics.
//!
//! | topic                            | direction | QoS | retained | payload |
//! |----------------------------------|-----------|-----|----------|---------|
//! | `motcua/v1/d/{device}/up`        | agent → DC | 1  | no       | one submission envelope |
//! | `motcua/v1/d/{device}/receipt`   | DC → agent | 1  | no       | one receipt |
//! | `motcua/v1/d/{device}/health`    | agent → DC | 0  | no       | health report (JSON) |
//! | `motcua/v1/d/{device}/status`    | agent → DC | 1  | yes      | `online` / `offline` (last will) |
//! | `motcua/v1/d/{device}/down/{name}` | DC → agent | 1 | yes     | data for this device |
//! | `motcua/v1/all/{name}`           | DC → agents | 1 | yes      | data for every device (catalogue, holidays) |
//!
//! The DC's receivers subscribe to [`dc_up_filter`], a shared subscription,
//! so the broker spreads devices' messages over several receivers.

use crate::ids::DeviceId;

/// The prefix of every topic, carrying the protocol's major version.
pub const ROOT: &str = "motcua/v1";

/// MQTT quality of service, as the protocol uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    /// At most once: health reports, which the next report supersedes.
    AtMostOnce = 0,
    /// At least once: everything else. Duplicates are harmless because the
    /// chain rules recognise them.
    AtLeastOnce = 1,
}

/// The per-device channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Submissions, agent to DC.
    Up,
    /// Receipts, DC to agent.
    Receipt,
    /// Health reports, agent to DC.
    Health,
    /// Online/offline status, retained, with the last will.
    Status,
    /// Data for one device, DC to agent; the name says which.
    Down(String),
}

impl Channel {
    /// The QoS messages on this channel are published with.
    pub fn qos(&self) -> Qos {
        match self {
            Channel::Health => Qos::AtMostOnce,
            _ => Qos::AtLeastOnce,
        }
    }

    /// Whether messages on this channel are published retained.
    pub fn retained(&self) -> bool {
        matches!(self, Channel::Status | Channel::Down(_))
    }
}

/// The topic of `channel` for `device`.
pub fn device_topic(device: &DeviceId, channel: &Channel) -> String {
    match channel {
        Channel::Up => format!("{ROOT}/d/{device}/up"),
        Channel::Receipt => format!("{ROOT}/d/{device}/receipt"),
        Channel::Health => format!("{ROOT}/d/{device}/health"),
        Channel::Status => format!("{ROOT}/d/{device}/status"),
        Channel::Down(name) => format!("{ROOT}/d/{device}/down/{name}"),
    }
}

/// The broadcast name of the procedure catalogue.
pub const CATALOGUE: &str = "catalogue";
/// The broadcast name of the receiving units' names and places.
pub const UNITS: &str = "units";
/// The downstream name of a device's status updates.
pub const DOWN_STATUS: &str = "status";
/// The downstream name of a device's settings.
pub const DOWN_SETTINGS: &str = "settings";

/// The topic of broadcast data `name` (e.g. `catalogue`) for every device.
pub fn broadcast_topic(name: &str) -> String {
    format!("{ROOT}/all/{name}")
}

/// The filter an agent subscribes to for everything sent down to it.
pub fn agent_filters(device: &DeviceId) -> [String; 3] {
    [
        device_topic(device, &Channel::Receipt),
        format!("{ROOT}/d/{device}/down/+"),
        format!("{ROOT}/all/+"),
    ]
}

/// The broadcast name in a broadcast topic, or `None` for any other topic.
pub fn parse_broadcast_topic(topic: &str) -> Option<&str> {
    let name = topic.strip_prefix(ROOT)?.strip_prefix("/all/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The shared-subscription filter the DC's receivers use for submissions:
/// the broker hands each message to one receiver of `group`.
pub fn dc_up_filter(group: &str) -> String {
    format!("$share/{group}/{ROOT}/d/+/up")
}

/// The shared-subscription filter for health reports: each report is
/// stored by one receiver of `group`.
pub fn dc_health_filter(group: &str) -> String {
    format!("$share/{group}/{ROOT}/d/+/health")
}

/// The filter for every device's presence. Not shared: brokers send
/// retained messages to ordinary subscriptions only, so each receiver
/// learns every counter's last presence when it subscribes (writing it
/// again is harmless).
pub fn dc_status_filter() -> String {
    format!("{ROOT}/d/+/status")
}

/// Splits a per-device topic into its device and channel, or `None` when the
/// topic is not one of the protocol's (or names an invalid device id).
pub fn parse_device_topic(topic: &str) -> Option<(DeviceId, Channel)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix("/d/")?;
    let mut parts = rest.splitn(3, '/');
    let device: DeviceId = parts.next()?.parse().ok()?;
    let channel = match (parts.next()?, parts.next()) {
        ("up", None) => Channel::Up,
        ("receipt", None) => Channel::Receipt,
        ("health", None) => Channel::Health,
        ("status", None) => Channel::Status,
        ("down", Some(name)) if !name.is_empty() && !name.contains('/') => {
            Channel::Down(name.to_owned())
        }
        _ => return None,
    };
    Some((device, channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DeviceId {
        "H49.12.3-q01".parse().expect("valid")
    }

    #[test]
    fn every_device_topic_parses_back() {
        for ch in [
            Channel::Up,
            Channel::Receipt,
            Channel::Health,
            Channel::Status,
            Channel::Down("catalogue".into()),
        ] {
            let t = device_topic(&dev(), &ch);
            assert!(t.starts_with("motcua/v1/d/H49.12.3-q01/"), "{t}");
            assert_eq!(parse_device_topic(&t), Some((dev(), ch)));
        }
    }

    #[test]
    fn foreign_topics_are_not_parsed() {
        for t in [
            "motcua/v1/d/x/up",
            "motcua/v2/d/abc/up",
            "motcua/v1/d/abc/up/x",
            "motcua/v1/d/abc/down/",
            "other",
        ] {
            assert_eq!(parse_device_topic(t), None, "{t}");
        }
    }

    #[test]
    fn dc_filter_is_a_shared_subscription() {
        assert_eq!(
            dc_up_filter("motcua-dc"),
            "$share/motcua-dc/motcua/v1/d/+/up"
        );
        assert_eq!(
            dc_health_filter("motcua-dc"),
            "$share/motcua-dc/motcua/v1/d/+/health"
        );
        assert_eq!(dc_status_filter(), "motcua/v1/d/+/status");
        assert_eq!(Channel::Health.qos(), Qos::AtMostOnce);
        assert!(Channel::Status.retained());
    }
}
