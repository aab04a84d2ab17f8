//! The broker's access list, kept by the DC (Mosquitto's dynamic-security
//! plugin).
//!
//! Who may publish and subscribe what at the broker follows the registry:
//! every receiver name (`[broker] receivers`) gets the receivers' role,
//! every enrolled, unrevoked counter a role of its own naming only its own
//! topics and the broadcasts. Subscriptions are checked when they are made,
//! shared ones included (`$share/<group>/...` is matched as written), so a
//! counter's certificate cannot join the receivers' group nor subscribe to
//! `#` or another counter's topics.
//!
//! Two ways in:
//! - [`bootstrap`]: the plugin's whole file, written once by `motcua-dc
//!   broker access --out` before Mosquitto first starts.
//! - [`Keeper`]: `motcua-dc run` with `access = "mosquitto-dynsec"` keeps
//!   the broker in step with the registry over the plugin's `$CONTROL`
//!   topic: a newly enrolled counter is let in, a revoked one is deleted
//!   (the broker disconnects it; it may connect again, as its certificate
//!   is valid until the CRL says otherwise, but it can neither publish nor
//!   subscribe anything).
//!
//! Only what this module created is ever deleted: clients whose role is
//! `motcua-device-<their name>`, and such roles. An operator's own
//! clients (an administrator with a password, say) are left alone.
//!
//! Everything here but [`Keeper`] is pure: the plan is a function of what
//! the broker reports and what the registry holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use motcua_protocol::DeviceId;
use motcua_protocol::topics;
use serde_json::{Value, json};

use crate::store::Store;

/// Where commands go.
pub const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
/// Where the plugin answers (to every subscriber).
pub const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// The role every receiver name holds.
pub const RECEIVER_ROLE: &str = "motcua-receiver";
/// Commands per message: each message is one MQTT publish and one answer.
/// The plugin rewrites its whole file after every command, on the broker's
/// only thread, so a large fleet is let in a few at a time.
const COMMANDS_PER_MESSAGE: usize = 20;
/// Clients listed per request.
const LIST_PAGE: usize = 1000;

/// The role of counter `device`: its own topics and the broadcasts.
pub fn device_role(device: &str) -> String {
    format!("motcua-device-{device}")
}

fn acl(kind: &str, topic: &str) -> Value {
    json!({"acltype": kind, "topic": topic, "priority": 0, "allow": true})
}

/// The receivers' rights: join `group` for submissions and health reports,
/// read every presence, write every receipt and everything sent down, and
/// keep this access list.
pub fn receiver_acls(group: &str) -> Vec<Value> {
    let root = topics::ROOT;
    let mut a = vec![
        acl("subscribeLiteral", &topics::dc_up_filter(group)),
        acl("subscribeLiteral", &topics::dc_health_filter(group)),
        acl("subscribeLiteral", &topics::dc_status_filter()),
        acl("subscribeLiteral", RESPONSE_TOPIC),
        acl("publishClientSend", CONTROL_TOPIC),
        acl("publishClientReceive", RESPONSE_TOPIC),
    ];
    for ch in ["up", "health", "status"] {
        a.push(acl("publishClientReceive", &format!("{root}/d/+/{ch}")));
    }
    for t in ["d/+/receipt", "d/+/down/#", "all/#"] {
        a.push(acl("publishClientSend", &format!("{root}/{t}")));
    }
    a
}

/// A counter's rights: publish its own submissions, health and presence
/// (its last will included: the broker checks the will too); subscribe to
/// and receive its own receipts, what is sent down to it, and the
/// broadcasts; nothing else.
pub fn device_acls(device: &DeviceId) -> Vec<Value> {
    use motcua_protocol::topics::Channel;
    let mut a: Vec<Value> = [Channel::Up, Channel::Health, Channel::Status]
        .iter()
        .map(|c| acl("publishClientSend", &topics::device_topic(device, c)))
        .collect();
    for f in topics::agent_filters(device) {
        a.push(acl("subscribeLiteral", &f));
        a.push(acl("publishClientReceive", &f));
    }
    a
}

/// The enrolled, unrevoked devices: those the access list lets in.
pub fn active_devices(store: &mut dyn Store) -> Result<Vec<DeviceId>, crate::store::StoreError> {
    Ok(store
        .devices()?
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| d.device)
        .collect())
}

/// The devices that get a counter's role: all but one named like a
/// receiver (the receivers' rights are never given to a counter).
fn counters<'a>(
    receivers: &'a [String],
    devices: &'a [DeviceId],
) -> impl Iterator<Item = &'a DeviceId> + 'a {
    devices
        .iter()
        .filter(|d| !receivers.iter().any(|r| r == d.as_str()))
}

/// Denies by default: a client is allowed only what a role grants it.
fn default_access() -> Value {
    json!({
        "publishClientSend": false,
        "publishClientReceive": false,
        "subscribe": false,
        "unsubscribe": true
    })
}

/// The plugin's whole file (`plugin_opt_config_file`) for `receivers` and
/// the enrolled, unrevoked `devices`.
pub fn bootstrap(group: &str, receivers: &[String], devices: &[DeviceId]) -> Value {
    let mut roles = vec![json!({
        "rolename": RECEIVER_ROLE,
        "textname": "motcua receivers",
        "acls": receiver_acls(group),
    })];
    let mut clients: Vec<Value> = receivers
        .iter()
        .map(|r| {
            json!({
                "username": r,
                "textname": "motcua receiver",
                "roles": [{"rolename": RECEIVER_ROLE}],
            })
        })
        .collect();
    for d in counters(receivers, devices) {
        roles.push(json!({
            "rolename": device_role(d.as_str()),
            "textname": "motcua counter",
            "acls": device_acls(d),
        }));
        clients.push(json!({
            "username": d.as_str(),
            "textname": "motcua counter",
            "roles": [{"rolename": device_role(d.as_str())}],
        }));
    }
    json!({
        "defaultACLAccess": default_access(),
        "clients": clients,
        "groups": [],
        "roles": roles,
    })
}

/// What the broker holds: each client's roles, and every role's name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// Client name to the names of its roles.
    pub clients: BTreeMap<String, BTreeSet<String>>,
    /// Every role.
    pub roles: BTreeSet<String>,
}

/// What keeping the list changed, for the log and `--json`.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// Counters let in.
    pub added: Vec<String>,
    /// Counters removed (revoked, or no longer enrolled).
    pub removed: Vec<String>,
    /// Receiver names given the receivers' role.
    pub receivers: Vec<String>,
}

impl Changes {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.receivers.is_empty()
    }
}

/// The commands that bring `held` to `receivers` plus `devices`, and a
/// summary of them. A device whose name is also a receiver's is skipped
/// (the receivers' rights are never given to a counter).
pub fn plan(
    held: &Held,
    group: &str,
    receivers: &[String],
    devices: &[DeviceId],
) -> (Vec<Value>, Changes) {
    let mut cmds = Vec::new();
    let mut changes = Changes::default();
    if !held.roles.contains(RECEIVER_ROLE) {
        cmds.push(json!({
            "command": "createRole",
            "rolename": RECEIVER_ROLE,
            "textname": "motcua receivers",
            "acls": receiver_acls(group),
        }));
    }
    for r in receivers {
        match held.clients.get(r) {
            None => {
                cmds.push(json!({
                    "command": "createClient",
                    "username": r,
                    "textname": "motcua receiver",
                    "roles": [{"rolename": RECEIVER_ROLE}],
                }));
                changes.receivers.push(r.clone());
            }
            Some(roles) if !roles.contains(RECEIVER_ROLE) => {
                cmds.push(json!({
                    "command": "addClientRole",
                    "username": r,
                    "rolename": RECEIVER_ROLE,
                }));
                changes.receivers.push(r.clone());
            }
            Some(_) => {}
        }
    }
    let wanted: BTreeSet<&str> = counters(receivers, devices).map(DeviceId::as_str).collect();
    for d in counters(receivers, devices) {
        let role = device_role(d.as_str());
        if !held.roles.contains(&role) {
            cmds.push(json!({
                "command": "createRole",
                "rolename": role,
                "textname": "motcua counter",
                "acls": device_acls(d),
            }));
        }
        match held.clients.get(d.as_str()) {
            None => {
                cmds.push(json!({
                    "command": "createClient",
                    "username": d.as_str(),
                    "textname": "motcua counter",
                    "roles": [{"rolename": role}],
                }));
                changes.added.push(d.to_string());
            }
            Some(roles) if !roles.contains(&role) => {
                cmds.push(json!({
                    "command": "addClientRole",
                    "username": d.as_str(),
                    "rolename": role,
                }));
                changes.added.push(d.to_string());
            }
            Some(_) => {}
        }
    }
    // Ours and no longer wanted: a client holding its own device role.
    for (name, roles) in &held.clients {
        if roles.contains(&device_role(name)) && !wanted.contains(name.as_str()) {
            cmds.push(json!({"command": "deleteClient", "username": name}));
            changes.removed.push(name.clone());
        }
    }
    for role in &held.roles {
        if let Some(name) = role.strip_prefix("motcua-device-")
            && !wanted.contains(name)
        {
            cmds.push(json!({"command": "deleteRole", "rolename": role}));
        }
    }
    (cmds, changes)
}

/// One answer of the plugin: the command it answers, its error if any,
/// its data, and the correlation data sent with the command.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The command answered.
    pub command: String,
    /// The plugin's error text, `None` on success.
    pub error: Option<String>,
    /// What a list command returns.
    pub data: Value,
    /// Echoed from the command.
    pub correlation: Option<String>,
}

/// The answers in one response message; `None` when it is not one.
pub fn answers(payload: &[u8]) -> Option<Vec<Answer>> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let list = v.get("responses")?.as_array()?;
    Some(
        list.iter()
            .map(|r| Answer {
                command: r
                    .get("command")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                error: r.get("error").and_then(Value::as_str).map(str::to_owned),
                data: r.get("data").cloned().unwrap_or(Value::Null),
                correlation: r
                    .get("correlationData")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
            .collect(),
    )
}

/// Adds one page of a list answer to what the broker holds; returns how
/// many entries the page held and the total the broker reports.
type AddPage = fn(&mut Held, &Value) -> (usize, usize);

/// Adds one page of a verbose `listClients` answer to `held`; returns how
/// many clients it held and the total the broker reports.
pub fn add_clients(held: &mut Held, data: &Value) -> (usize, usize) {
    let total = data.get("totalCount").and_then(Value::as_u64).unwrap_or(0) as usize;
    let list = data
        .get("clients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &list {
        let Some(name) = c.get("username").and_then(Value::as_str) else {
            continue;
        };
        let roles = c
            .get("roles")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.get("rolename").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        held.clients.insert(name.to_owned(), roles);
    }
    (list.len(), total)
}

/// Adds one page of a `listRoles` answer to `held`; as [`add_clients`].
pub fn add_roles(held: &mut Held, data: &Value) -> (usize, usize) {
    let total = data.get("totalCount").and_then(Value::as_u64).unwrap_or(0) as usize;
    let list = data
        .get("roles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &list {
        let name = r
            .as_str()
            .or_else(|| r.get("rolename").and_then(Value::as_str));
        if let Some(n) = name {
            held.roles.insert(n.to_owned());
        }
    }
    (list.len(), total)
}

/// An error of the plugin that only says the list already was as wanted
/// (two receivers keeping it at once): something to create that exists,
/// something to delete that is gone.
fn harmless(command: &str, error: &str) -> bool {
    matches!(
        (command, error),
        ("createClient", "Client already exists")
            | ("createRole", "Role already exists")
            | ("deleteClient", "Client not found")
            | ("deleteRole", "Role not found")
    )
}

/// How the keeper reaches the broker: publishing a command and taking the
/// plugin's answers, on the receiver's own connection.
pub trait Channel: Send {
    /// Publishes `payload` on [`CONTROL_TOPIC`]; false when it cannot be
    /// queued now.
    fn send(&mut self, payload: Vec<u8>) -> bool;
    /// The next response message, waiting at most `wait`.
    fn next(&mut self, wait: Duration) -> Option<Vec<u8>>;
}

/// Keeps the broker's access list in step with the registry.
pub struct Keeper {
    /// The registry.
    pub store: Box<dyn Store>,
    /// The receivers' shared-subscription group.
    pub group: String,
    /// Every receiver's certificate name.
    pub receivers: Vec<String>,
    /// How often the registry is read.
    pub every: Duration,
    /// How long to wait for the plugin's answer.
    pub answer_within: Duration,
    /// Where successes and failures are counted.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Why keeping the list failed this time.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    /// No answer in time.
    #[error(
        "the broker did not answer the dynamic-security request ({0}) in time: is the broker's dynamic-security plugin loaded, and does its access list give this receiver's certificate name the role motcua-receiver (motcua-dc broker access --out)?"
    )]
    NoAnswer(&'static str),
    /// The command could not be queued on the connection.
    #[error("the connection to the broker could not take the request")]
    NotQueued,
    /// The plugin refused a command.
    #[error("the broker refused {command}: {error}")]
    Refused {
        /// The command.
        command: String,
        /// The plugin's error.
        error: String,
    },
    /// The registry could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Keeper {
    /// The devices that should be let in: enrolled and not revoked.
    pub fn wanted(&mut self) -> Result<Vec<DeviceId>, crate::store::StoreError> {
        active_devices(&mut *self.store)
    }

    /// Reads what the broker holds, then sends what brings it in step with
    /// `devices`. Returns what changed.
    pub fn apply(
        &self,
        ch: &mut dyn Channel,
        devices: &[DeviceId],
        tag: &str,
    ) -> Result<Changes, KeepError> {
        let mut held = Held::default();
        // Answers left from an earlier attempt that timed out are dropped,
        // and this attempt's correlation data are its own.
        while ch.next(Duration::ZERO).is_some() {}
        let tag = format!("{tag}-{:08x}", motcua_common::mqtt::random_u64() as u32);
        let mut n = 0u64;
        let mut ask = |ch: &mut dyn Channel, cmds: Vec<Value>, what: &'static str| {
            n += 1;
            let corr = format!("{tag}-{n}");
            let cmds: Vec<Value> = cmds
                .into_iter()
                .map(|mut c| {
                    c["correlationData"] = Value::String(corr.clone());
                    c
                })
                .collect();
            let wanted = cmds.len();
            let body = serde_json::to_vec(&json!({ "commands": cmds })).unwrap_or_default();
            if !ch.send(body) {
                return Err(KeepError::NotQueued);
            }
            let deadline = Instant::now() + self.answer_within;
            let mut got = Vec::new();
            while got.len() < wanted {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(KeepError::NoAnswer(what));
                }
                let Some(msg) = ch.next(left) else {
                    return Err(KeepError::NoAnswer(what));
                };
                for a in answers(&msg).unwrap_or_default() {
                    if a.correlation.as_deref() == Some(corr.as_str()) {
                        got.push(a);
                    }
                }
            }
            Ok(got)
        };
        // Both lists, a page at a time; each page adds to `held`.
        let lists: [(&'static str, bool, AddPage); 2] = [
            ("listClients", true, add_clients),
            ("listRoles", false, add_roles),
        ];
        for (command, verbose, add) in lists {
            let mut offset = 0;
            loop {
                let page = json!({"command": command, "verbose": verbose,
                                  "count": LIST_PAGE, "offset": offset});
                let a = ask(ch, vec![page], command)?.remove(0);
                if let Some(error) = a.error {
                    return Err(KeepError::Refused {
                        command: a.command,
                        error,
                    });
                }
                let (got, total) = add(&mut held, &a.data);
                offset += got;
                if got == 0 || offset >= total {
                    break;
                }
            }
        }
        let (cmds, changes) = plan(&held, &self.group, &self.receivers, devices);
        let mut first_refusal = None;
        for chunk in cmds.chunks(COMMANDS_PER_MESSAGE) {
            for a in ask(ch, chunk.to_vec(), "changes")? {
                if let Some(e) = a.error
                    && !harmless(&a.command, &e)
                {
                    tracing::error!(command = %a.command, error = %e, "the broker refused a change to its access list");
                    first_refusal.get_or_insert(KeepError::Refused {
                        command: a.command,
                        error: e,
                    });
                }
            }
        }
        match first_refusal {
            Some(e) => Err(e),
            None => Ok(changes),
        }
    }

    /// Keeps the list until `stop`: reads the registry every `every`, and
    /// when it changed, on every new connection (the broker may have
    /// restarted from an older file) and every ten minutes (to mend what
    /// someone changed at the broker) brings the broker in step.
    /// `connection` is the number of the receiver's connection once it is
    /// up and subscribed to the answers, 0 while it is not.
    pub fn run(mut self, ch: &mut dyn Channel, connection: &AtomicU64, stop: &AtomicBool) {
        let metrics = self.metrics.clone();
        const RECHECK: Duration = Duration::from_secs(600);
        let tag = format!("motcua-dc-{:08x}", motcua_common::mqtt::random_u64() as u32);
        let mut applied: Option<(Vec<DeviceId>, Instant)> = None;
        let mut last_connection = 0;
        while !stop.load(Ordering::Relaxed) {
            let now = connection.load(Ordering::Relaxed);
            if now == 0 {
                sleep_unless(stop, Duration::from_millis(200));
                continue;
            }
            if now != last_connection {
                applied = None;
                last_connection = now;
            }
            let devices = match self.wanted() {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "reading the registry for the broker's access list");
                    sleep_unless(stop, self.every);
                    continue;
                }
            };
            let due = match &applied {
                None => true,
                Some((last, at)) => *last != devices || at.elapsed() >= RECHECK,
            };
            if due {
                match self.apply(ch, &devices, &tag) {
                    Ok(c) => {
                        if !c.is_empty() {
                            tracing::info!(
                                added = ?c.added,
                                removed = ?c.removed,
                                receivers = ?c.receivers,
                                "broker access list brought in step with the registry"
                            );
                        }
                        if let Some(m) = &metrics {
                            m.access_kept(devices.len() as u64, true);
                        }
                        applied = Some((devices, Instant::now()));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "keeping the broker's access list");
                        if let Some(m) = &metrics {
                            m.access_kept(devices.len() as u64, false);
                        }
                    }
                }
            }
            sleep_unless(stop, self.every);
        }
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        s.parse().expect("device id")
    }

    #[test]
    fn a_counter_may_subscribe_only_to_its_own_topics_and_the_broadcasts() {
        let acls = device_acls(&id("H49.12.3-q01"));
        let subs: Vec<&str> = acls
            .iter()
            .filter(|a| a["acltype"] == "subscribeLiteral")
            .map(|a| a["topic"].as_str().expect("topic"))
            .collect();
        assert_eq!(
            subs,
            [
                "motcua/v1/d/H49.12.3-q01/receipt",
                "motcua/v1/d/H49.12.3-q01/down/+",
                "motcua/v1/all/+"
            ]
        );
        let sends: Vec<&str> = acls
            .iter()
            .filter(|a| a["acltype"] == "publishClientSend")
            .map(|a| a["topic"].as_str().expect("topic"))
            .collect();
        assert_eq!(
            sends,
            [
                "motcua/v1/d/H49.12.3-q01/up",
                "motcua/v1/d/H49.12.3-q01/health",
                "motcua/v1/d/H49.12.3-q01/status"
            ]
        );
        assert!(acls.iter().all(|a| a["allow"] == true));
        assert!(
            !acls
                .iter()
                .any(|a| a["topic"].as_str().is_some_and(|t| t.contains('#')))
        );
    }

    #[test]
    fn only_receivers_join_the_group() {
        let r = receiver_acls("motcua-dc");
        assert!(r.iter().any(|a| a["acltype"] == "subscribeLiteral"
            && a["topic"] == "$share/motcua-dc/motcua/v1/d/+/up"));
        let file = bootstrap("motcua-dc", &["motcua-dc".into()], &[id("H49.1-q01")]);
        assert_eq!(file["defaultACLAccess"]["subscribe"], false);
        assert_eq!(file["defaultACLAccess"]["publishClientSend"], false);
        let counter_role = &file["roles"][1];
        assert_eq!(counter_role["rolename"], "motcua-device-H49.1-q01");
        assert!(
            !counter_role["acls"]
                .as_array()
                .expect("acls")
                .iter()
                .any(|a| a["topic"].as_str().is_some_and(|t| t.starts_with("$share")))
        );
    }

    fn held(clients: &[(&str, &[&str])], roles: &[&str]) -> Held {
        Held {
            clients: clients
                .iter()
                .map(|(c, rs)| (c.to_string(), rs.iter().map(|r| r.to_string()).collect()))
                .collect(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn commands(cmds: &[Value]) -> Vec<String> {
        cmds.iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["command"].as_str().unwrap_or_default(),
                    c.get("username")
                        .or(c.get("rolename"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn the_plan_adds_the_enrolled_removes_the_revoked_and_leaves_others_alone() {
        let h = held(
            &[
                ("motcua-dc", &[RECEIVER_ROLE]),
                ("old.1-q01", &["motcua-device-old.1-q01"]),
                ("keep.1-q01", &["motcua-device-keep.1-q01"]),
                ("admin", &["admin"]),
            ],
            &[
                RECEIVER_ROLE,
                "motcua-device-old.1-q01",
                "motcua-device-keep.1-q01",
                "admin",
            ],
        );
        let (cmds, changes) = plan(
            &h,
            "motcua-dc",
            &["motcua-dc".into(), "motcua-dc-2".into()],
            &[id("keep.1-q01"), id("new.1-q01")],
        );
        assert_eq!(
            commands(&cmds),
            [
                "createClient motcua-dc-2",
                "createRole motcua-device-new.1-q01",
                "createClient new.1-q01",
                "deleteClient old.1-q01",
                "deleteRole motcua-device-old.1-q01",
            ]
        );
        assert_eq!(changes.added, ["new.1-q01"]);
        assert_eq!(changes.removed, ["old.1-q01"]);
        assert_eq!(changes.receivers, ["motcua-dc-2"]);
        // In step: nothing to do.
        let h = held(
            &[
                ("motcua-dc", &[RECEIVER_ROLE]),
                ("keep.1-q01", &["motcua-device-keep.1-q01"]),
            ],
            &[RECEIVER_ROLE, "motcua-device-keep.1-q01"],
        );
        let (cmds, changes) = plan(&h, "motcua-dc", &["motcua-dc".into()], &[id("keep.1-q01")]);
        assert!(cmds.is_empty(), "{cmds:?}");
        assert!(changes.is_empty());
    }

    #[test]
    fn a_device_named_like_a_receiver_gets_no_rights() {
        let (cmds, changes) = plan(
            &Held::default(),
            "motcua-dc",
            &["motcua-dc".into()],
            &[id("motcua-dc")],
        );
        assert_eq!(
            commands(&cmds),
            ["createRole motcua-receiver", "createClient motcua-dc"]
        );
        assert!(changes.added.is_empty());
    }

    #[test]
    fn answers_are_read_with_their_correlation() {
        let msg = br#"{"responses":[{"command":"listClients","data":{"totalCount":2,"clients":[{"username":"a","roles":[{"rolename":"r"}]},{"username":"b","roles":[]}]},"correlationData":"t-1"},{"command":"createClient","error":"Client already exists","correlationData":"t-2"}]}"#;
        let a = answers(msg).expect("a response");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].error.as_deref(), Some("Client already exists"));
        let mut h = Held::default();
        assert_eq!(add_clients(&mut h, &a[0].data), (2, 2));
        assert_eq!(h.clients["a"], BTreeSet::from(["r".to_owned()]));
        assert!(answers(b"not json").is_none());
        assert!(harmless("createClient", "Client already exists"));
        assert!(!harmless("createClient", "Role not found"));
        assert!(!harmless("addClientRole", "Client not found"));
    }
}
