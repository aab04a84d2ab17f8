//! Configuration keys declared once.
//!
//! A section of a configuration file is declared with [`section!`]: each
//! key once, with its doc, its default (or none: required) and its
//! [`Kind`], the checked type it becomes. From that one line the macro
//! writes the raw serde field and its default, the validation (bounds and
//! all, every problem recorded in [`Problems`] under the dotted key), the
//! typed field of the validated section, its line in `config check`'s
//! effective configuration, and its entry in the section's `KEYS`, which
//! [`check_template`] compares with the shipped, documented template.
//!
//! Keys that are only valid together (a broker URL and its TLS files, a
//! listen address and its certificate) are declared as a section's
//! *parts*: raw keys with defaults, validated together by a hand-written
//! function whose result fills the section's *joined* fields.
//!
//! ```text
//! section! {
//!     /// `[dc]`.
//!     #[derive(Debug, Clone)]
//!     "dc": RawDc => DcSection {
//!         keys {
//!             /// MQTT keep-alive interval.
//!             keep_alive = "30s" => Seconds<5, 1200>,
//!         }
//!     }
//! }
//! ```
//! declares `dc.keep_alive`: a string in the file, `"30s"` when absent,
//! refused outside 5 s to 20 min, a `Duration` in `DcSection`, printed as
//! `keep_alive = "30s"`, and required in the template with that default.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::{HumanDuration, Problems};

/// How one key is read, checked and shown.
pub trait Kind {
    /// What the file holds.
    type Raw: DeserializeOwned + Clone + fmt::Debug;
    /// The checked value the validated section holds.
    type Value;
    /// Checks `raw`, recording each problem under `key`.
    fn check(p: &mut Problems, key: &str, raw: &Self::Raw) -> Option<Self::Value>;
    /// The value as TOML for the effective configuration, or `None` to
    /// leave the key's line out.
    fn show(value: &Self::Value) -> Option<String>;
}

/// A string parsed with `T`'s `FromStr` (whose error quotes the input),
/// shown as its `Display` in quotes.
pub struct Parsed<T>(PhantomData<T>);

impl<T> Kind for Parsed<T>
where
    T: FromStr + fmt::Display,
    T::Err: fmt::Display,
{
    type Raw = String;
    type Value = T;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<T> {
        p.parse::<T>(key, raw)
    }
    fn show(value: &T) -> Option<String> {
        Some(format!("{:?}", value.to_string()))
    }
}

/// A key that may be absent with no default: `K` when given; its line is
/// left out of the effective configuration when absent.
pub struct Maybe<K>(PhantomData<K>);

impl<K: Kind> Kind for Maybe<K> {
    type Raw = Option<K::Raw>;
    type Value = Option<K::Value>;
    fn check(p: &mut Problems, key: &str, raw: &Option<K::Raw>) -> Option<Option<K::Value>> {
        match raw {
            Some(r) => K::check(p, key, r).map(Some),
            None => Some(None),
        }
    }
    fn show(value: &Option<K::Value>) -> Option<String> {
        value.as_ref().and_then(K::show)
    }
}

/// A human duration (`30s`, `5m`, `90days`) from `MIN` to `MAX` seconds.
pub struct Seconds<const MIN: u64, const MAX: u64>;

impl<const MIN: u64, const MAX: u64> Kind for Seconds<MIN, MAX> {
    type Raw = String;
    type Value = Duration;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<Duration> {
        let d = p.parse::<HumanDuration>(key, raw)?.0;
        let (min, max) = (Duration::from_secs(MIN), Duration::from_secs(MAX));
        if d < min || d > max {
            p.push(
                key,
                format!(
                    "{raw:?} is out of range: use from {} to {}",
                    HumanDuration(min),
                    HumanDuration(max)
                ),
            );
            return None;
        }
        Some(d)
    }
    fn show(value: &Duration) -> Option<String> {
        Some(format!("{:?}", HumanDuration(*value).to_string()))
    }
}

/// A whole number from `MIN` to `MAX`, held as a `T`.
pub struct Count<T, const MIN: i64, const MAX: i64>(PhantomData<T>);

impl<T, const MIN: i64, const MAX: i64> Kind for Count<T, MIN, MAX>
where
    T: TryFrom<i64> + fmt::Display,
{
    type Raw = i64;
    type Value = T;
    fn check(p: &mut Problems, key: &str, raw: &i64) -> Option<T> {
        let v = *raw;
        if (MIN..=MAX).contains(&v) {
            T::try_from(v).ok()
        } else {
            p.push(key, format!("{v} is out of range: use {MIN} to {MAX}"));
            None
        }
    }
    fn show(value: &T) -> Option<String> {
        Some(value.to_string())
    }
}

/// `true` or `false`.
pub struct Flag;

impl Kind for Flag {
    type Raw = bool;
    type Value = bool;
    fn check(_: &mut Problems, _: &str, raw: &bool) -> Option<bool> {
        Some(*raw)
    }
    fn show(value: &bool) -> Option<String> {
        Some(value.to_string())
    }
}

/// One declared key, for the template check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key's name within its section.
    pub key: &'static str,
    /// Its default as written in the declaration (`"30s"`, `2048`, `None`
    /// for none), or `None` when the key is required.
    pub default: Option<&'static str>,
}

/// Compares a shipped template with the declared keys: every declared key
/// appears in its section after a comment (commented out when it has no
/// default), set to its default when it has one; a required key is set;
/// the template has no section or key that is not declared. Returns one
/// line per difference.
pub fn check_template(template: &str, sections: &[(&str, &[KeyDoc])]) -> Vec<String> {
    // (section, key, value when set, whether a comment or key line is
    // right above it)
    let mut found: Vec<(String, String, Option<String>, bool)> = Vec::new();
    let mut section = String::new();
    let mut above_is_text = false;
    let mut wrong = Vec::new();
    for line in template.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].to_owned();
            if !sections.iter().any(|(s, _)| *s == section) {
                wrong.push(format!("[{section}] is not a declared section"));
            }
            above_is_text = false;
            continue;
        }
        let (commented, body) = match t.strip_prefix("# ") {
            Some(b) => (true, b),
            None => (false, t),
        };
        let assignment = body.split_once(" = ").filter(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        if let Some((k, v)) = assignment {
            found.push((
                section.clone(),
                k.to_owned(),
                (!commented).then(|| v.to_owned()),
                above_is_text,
            ));
        }
        above_is_text = !t.is_empty();
    }
    for (s, keys) in sections {
        for d in *keys {
            let Some((_, _, value, documented)) =
                found.iter().find(|(fs, k, _, _)| fs == s && k == d.key)
            else {
                wrong.push(format!("{s}.{} is not in the template", d.key));
                continue;
            };
            if !documented {
                wrong.push(format!("{s}.{} has no comment above it", d.key));
            }
            match (d.default, value) {
                (None, None) => wrong.push(format!("{s}.{} is required but not set", d.key)),
                (Some("None"), _) | (None, Some(_)) => {}
                (Some(def), Some(v)) if def == v => {}
                (Some(def), v) => wrong.push(format!(
                    "{s}.{} is {} in the template, but its default is {def}",
                    d.key,
                    v.as_deref().unwrap_or("commented out")
                )),
            }
        }
    }
    for (s, k, _, _) in &found {
        let declared = sections
            .iter()
            .any(|(ds, keys)| ds == s && keys.iter().any(|d| d.key == k));
        if !declared && sections.iter().any(|(ds, _)| ds == s) {
            wrong.push(format!("{s}.{k} is in the template but not declared"));
        }
    }
    wrong
}

/// The raw field's type: the kind's raw type for a required key, an
/// `Option` of it (absent: the default) for a key with a default.
#[doc(hidden)]
#[macro_export]
macro_rules! __raw_field {
    ($t:ty) => { $t };
    ($t:ty, $d:expr) => { ::std::option::Option<$t> };
}

/// The raw value with its default applied.
#[doc(hidden)]
#[macro_export]
macro_rules! __resolved {
    ($t:ty, $v:expr) => {
        ::std::clone::Clone::clone(&$v)
    };
    ($t:ty, $v:expr, $d:expr) => {
        ::std::clone::Clone::clone(&$v).unwrap_or_else(|| <$t as ::std::convert::From<_>>::from($d))
    };
}

/// The declaration's default as text, `None` for a required key.
#[doc(hidden)]
#[macro_export]
macro_rules! __default_text {
    () => {
        ::std::option::Option::None
    };
    ($d:expr) => {
        ::std::option::Option::Some(stringify!($d))
    };
}

/// Declares a configuration section once; see the [module
/// documentation](crate::settings).
///
/// Generates the raw struct `$raw` (serde, unknown keys refused, defaults
/// applied), `$raw::KEYS`, `$raw::validate`, the validated struct
/// `$section` and its `Display` (the section's TOML, header included).
/// With parts, `validate` takes the joined fields' values (a tuple, in
/// declaration order, `None` when any was refused), the raw struct has an
/// accessor per part returning its value with the default applied, and
/// `Display` calls the given function to print the joined fields first.
#[macro_export]
macro_rules! section {
    (
        $(#[$sattr:meta])*
        $name:literal : $raw:ident => $section:ident {
            $(
                parts {
                    $( $(#[doc = $pdoc:literal])* $part:ident : $praw:ty $(= $pdefault:expr)? ),* $(,)?
                } => {
                    $( $(#[doc = $jdoc:literal])* $joined:ident : $jty:ty ),* $(,)?
                } shown by $show:path;
            )?
            keys {
                $( $(#[doc = $doc:literal])* $key:ident $(= $default:expr)? => $kind:ty ),* $(,)?
            }
        }
    ) => {
        #[doc = concat!("The `[", $name, "]` section as written. Its `Default` is")]
        /// every key absent; defaults are applied when it is validated.
        #[derive(Debug, Clone, Default, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $raw {
            $($(
                $(#[doc = $pdoc])*
                $part: $crate::__raw_field!($praw $(, $pdefault)?),
            )*)?
            $(
                $(#[doc = $doc])*
                $key: $crate::__raw_field!(<$kind as $crate::settings::Kind>::Raw $(, $default)?),
            )*
        }

        impl $raw {
            /// Every key of the section, with its default, in order.
            pub const KEYS: &'static [$crate::settings::KeyDoc] = &[
                $($(
                    $crate::settings::KeyDoc {
                        key: stringify!($part),
                        default: $crate::__default_text!($($pdefault)?),
                    },
                )*)?
                $(
                    $crate::settings::KeyDoc {
                        key: stringify!($key),
                        default: $crate::__default_text!($($default)?),
                    },
                )*
            ];

            $($(
                #[doc = concat!("`", $name, ".", stringify!($part), "`, default applied.")]
                pub fn $part(&self) -> $praw {
                    $crate::__resolved!($praw, self.$part $(, $pdefault)?)
                }
            )*)?

            /// Checks every key, recording each problem with its dotted key.
            #[allow(unused_parens)]
            pub fn validate(
                &self,
                p: &mut $crate::config::Problems,
                $( joined: ::std::option::Option<($($jty,)*)>, )?
            ) -> ::std::option::Option<$section> {
                $(
                    let $key = <$kind as $crate::settings::Kind>::check(
                        p,
                        concat!($name, ".", stringify!($key)),
                        &$crate::__resolved!(
                            <$kind as $crate::settings::Kind>::Raw,
                            self.$key
                            $(, $default)?
                        ),
                    );
                )*
                $( let ($($joined,)*) = joined?; )?
                ::std::option::Option::Some($section {
                    $($($joined,)*)?
                    $($key: $key?,)*
                })
            }
        }

        $(#[$sattr])*
        pub struct $section {
            $($(
                $(#[doc = $jdoc])*
                pub $joined: $jty,
            )*)?
            $(
                $(#[doc = $doc])*
                pub $key: <$kind as $crate::settings::Kind>::Value,
            )*
        }

        /// The section as TOML, header included, defaults filled in.
        impl ::std::fmt::Display for $section {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                writeln!(f, "[{}]", $name)?;
                $( $show(f, self)?; )?
                $(
                    if let ::std::option::Option::Some(v) =
                        <$kind as $crate::settings::Kind>::show(&self.$key)
                    {
                        writeln!(f, "{} = {}", stringify!($key), v)?;
                    }
                )*
                Ok(())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::section! {
        /// A section for the tests.
        #[derive(Debug, Clone)]
        "demo": RawDemo => DemoSection {
            parts {
                /// An address.
                host: String = "localhost",
                /// Its port.
                port: i64 = 80,
            } => {
                /// `host:port`.
                address: String,
            } shown by show_address;
            keys {
                /// Required.
                name => Parsed<String>,
                /// A bounded wait.
                wait = "30s" => Seconds<5, 60>,
                /// A bounded count.
                tries = 3 => Count<u8, 1, 9>,
                /// Optional, no default.
                note = None => Maybe<Parsed<String>>,
                /// A flag.
                on = true => Flag,
            }
        }
    }

    fn show_address(f: &mut fmt::Formatter<'_>, d: &DemoSection) -> fmt::Result {
        writeln!(f, "address = {:?}", d.address)
    }

    fn check(text: &str) -> Result<DemoSection, Problems> {
        let raw: RawDemo = toml::from_str(text).expect("TOML");
        let mut p = Problems::default();
        let address = format!("{}:{}", raw.host(), raw.port());
        let demo = raw.validate(&mut p, Some((address,)));
        p.finish(|| demo)
    }

    #[test]
    fn one_declaration_gives_defaults_checks_and_the_effective_lines() {
        let d = check("name = \"a\"").expect("defaults");
        assert_eq!(d.wait, Duration::from_secs(30));
        assert_eq!(d.tries, 3);
        assert_eq!(
            d.to_string(),
            "[demo]\naddress = \"localhost:80\"\nname = \"a\"\nwait = \"30s\"\ntries = 3\non = true\n"
        );
        let d = check("name = \"a\"\nnote = \"n\"\nport = 8080").expect("given");
        assert!(d.to_string().contains("address = \"localhost:8080\"\n"));
        assert!(d.to_string().contains("note = \"n\"\n"));
        let e = check("name = \"a\"\nwait = \"2s\"\ntries = 10").expect_err("bounds");
        assert_eq!(
            e.to_string(),
            "2 problems in the configuration:\n  demo.wait: \"2s\" is out of range: use from 5s to 1m\n  demo.tries: 10 is out of range: use 1 to 9\n"
        );
        assert!(
            toml::from_str::<RawDemo>("wait = \"5s\"").is_err(),
            "name is required"
        );
        assert!(
            toml::from_str::<RawDemo>("name = \"a\"\nnam = 1").is_err(),
            "unknown key"
        );
    }

    #[test]
    fn the_template_check_names_each_difference() {
        let good = "[demo]\n# An address.\nhost = \"localhost\"\nport = 80\n# The name.\nname = \"x\"\n\
                    # Wait.\nwait = \"30s\"\n# Tries.\ntries = 3\n# A note.\n# note = \"n\"\n# On.\non = true\n";
        assert_eq!(
            check_template(good, &[("demo", RawDemo::KEYS)]),
            Vec::<String>::new()
        );
        let bad = good
            .replace("wait = \"30s\"", "wait = \"1m\"")
            .replace("# Tries.\n", "\n")
            .replace("name = \"x\"", "# name = \"x\"")
            .replace("on = true", "on = true\nextra = 1");
        assert_eq!(
            check_template(&bad, &[("demo", RawDemo::KEYS)]),
            [
                "demo.name is required but not set",
                "demo.wait is \"1m\" in the template, but its default is \"30s\"",
                "demo.tries has no comment above it",
                "demo.extra is in the template but not declared",
            ]
        );
        assert_eq!(
            check_template("[other]\n", &[("demo", &[])]),
            ["[other] is not a declared section"]
        );
    }
}
