//! Layered configuration for Weft's services (`weft-sequencer`,
//! `weft-conductor`, and any later service such as the relay).
//!
//! One settings struct per service, one key per setting, four layers:
//!
//! 1. the struct's `Default`,
//! 2. one TOML file (`--config`),
//! 3. `WEFT_<SERVICE>_<KEY>` environment variables,
//! 4. command-line flags `--<key-with-dashes>`.
//!
//! Later layers win. Layers 3 and 4 are clap's: every setting is an
//! `Option` flag with an `env` name, so clap already applies "flag beats
//! environment" and this crate only lays what clap found over the file over
//! the defaults. The key of a setting is the clap argument's id (the field
//! name), so the file, the variable and the flag cannot drift apart; and
//! the printed default file ([`default_toml`]) takes each key's comment
//! from the flag's own help text.
//!
//! A key in the file that the service does not know is an error naming the
//! key and the file: a typo must not silently leave a default in force.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::{de::DeserializeOwned, Serialize};
use toml::{Table, Value};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The file names a key the service does not have.
    #[error("config file {path}: unknown key `{key}`{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key, dotted if nested.
        key: String,
        /// ` (did you mean `…`?)` when a known key is close.
        hint: String,
    },
    /// A value has the wrong type or is out of range.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The key, dotted if nested.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The settings struct and its flags disagree (a programming error,
    /// caught by each service's tests).
    #[error("setting `{0}` has no command-line flag")]
    NoFlag(String),
    /// A settings struct that does not serialize as a TOML table.
    #[error("settings do not serialize as a TOML table: {0}")]
    NotATable(String),
}

/// Lays `file` (if any) and then `overrides` over `S::default()` and
/// deserializes the result.
///
/// `overrides` is what clap parsed from flags and the environment: a
/// struct of `Option`s serialized with `None`s left out, so only what was
/// given replaces what is below it. Its key names must be the settings'.
pub fn load<S, O>(file: Option<&Path>, overrides: &O) -> Result<S, ConfigError>
where
    S: Serialize + DeserializeOwned + Default,
    O: Serialize,
{
    let text = match file {
        Some(path) => Some((
            path,
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        )),
        None => None,
    };
    load_str(text.as_ref().map(|(p, t)| (*p, t.as_str())), overrides)
}

/// [`load`] with the file's text already read: `(name for messages, text)`.
pub fn load_str<S, O>(file: Option<(&Path, &str)>, overrides: &O) -> Result<S, ConfigError>
where
    S: Serialize + DeserializeOwned + Default,
    O: Serialize,
{
    let mut merged = to_table(&S::default())?;
    if let Some((path, text)) = file {
        let layer: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        check_keys::<S>(&merged, &layer, path)?;
        overlay(&mut merged, layer);
    }
    overlay(&mut merged, to_table(overrides)?);
    let de = Value::Table(merged);
    serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Invalid {
        key: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Serializes settings (or overrides) as a table; `None` fields vanish.
fn to_table<T: Serialize>(value: &T) -> Result<Table, ConfigError> {
    match Value::try_from(value) {
        Ok(Value::Table(t)) => Ok(t),
        Ok(other) => Err(ConfigError::NotATable(other.type_str().to_string())),
        Err(e) => Err(ConfigError::NotATable(e.to_string())),
    }
}

/// Lays `top` over `base`: tables merge key by key, anything else replaces.
fn overlay(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(t)) => overlay(b, t),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Refuses any key of `layer` the settings do not have. The known keys are
/// the defaults' plus, for settings whose default is unset (`Option`, left
/// out of the serialized defaults), the struct's field names, which serde
/// reports when asked to deserialize an empty table with an unknown field.
fn check_keys<S: DeserializeOwned>(
    defaults: &Table,
    layer: &Table,
    path: &Path,
) -> Result<(), ConfigError> {
    let mut known: BTreeSet<String> = defaults.keys().cloned().collect();
    known.extend(field_names::<S>());
    for (key, value) in layer {
        if !known.contains(key) {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key: key.clone(),
                hint: hint(key, &known),
            });
        }
        // One level of sections: a service with nested tables names their
        // keys in its defaults.
        if let (Some(Value::Table(d)), Value::Table(l)) = (defaults.get(key), value) {
            for k in l.keys() {
                if !d.contains_key(k) {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_path_buf(),
                        key: format!("{key}.{k}"),
                        hint: hint(k, &d.keys().cloned().collect()),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The struct's field names, as serde's derive lists them.
fn field_names<S: DeserializeOwned>() -> Vec<String> {
    struct Fields(Vec<String>);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("field names only"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields.iter().map(|f| f.to_string()).collect();
            Err(serde::de::Error::custom("field names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(Vec::new());
    let _ = S::deserialize(&mut fields);
    fields.0
}

/// ` (did you mean `x`?)` for the known key nearest to `key`, if near.
fn hint(key: &str, known: &BTreeSet<String>) -> String {
    known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A complete, commented TOML file of the defaults, for
/// `--print-default-config`.
///
/// Every argument of `command` except those in `not_settings` (e.g.
/// `config`, `print_default_config`, one-off actions) is a setting: its
/// help text becomes the comment, its flag and environment variable are
/// named, and its default value is written; a setting without a default
/// (an `Option` that is unset) is written commented out. A key of the
/// defaults without an argument is an error.
pub fn default_toml<S: Serialize + Default>(
    command: &clap::Command,
    not_settings: &[&str],
    title: &str,
) -> Result<String, ConfigError> {
    let defaults = to_table(&S::default())?;
    let mut out = String::new();
    for line in title.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(
        out,
        "#\n# Precedence: flag > environment variable > this file > built-in default.\n# Unknown keys are refused."
    );
    let mut written = BTreeSet::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if not_settings.contains(&id) || matches!(id, "help" | "version") {
            continue;
        }
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in help.lines() {
            for wrapped in wrap(line.trim_end(), 76) {
                let _ = writeln!(out, "# {wrapped}");
            }
        }
        let mut names = Vec::new();
        if let Some(long) = arg.get_long() {
            names.push(format!("flag --{long}"));
        }
        if let Some(env) = arg.get_env() {
            names.push(format!("env {}", env.to_string_lossy()));
        }
        if !names.is_empty() {
            let _ = writeln!(out, "# ({})", names.join(", "));
        }
        match defaults.get(id) {
            Some(value) => {
                let mut one = Table::new();
                one.insert(id.to_string(), value.clone());
                out.push_str(
                    &toml::to_string(&one).map_err(|e| ConfigError::NotATable(e.to_string()))?,
                );
            }
            None => {
                let _ = writeln!(out, "# {id} = (unset)");
            }
        }
        written.insert(id.to_string());
    }
    if let Some(missing) = defaults.keys().find(|k| !written.contains(*k)) {
        return Err(ConfigError::NoFlag(missing.clone()));
    }
    Ok(out)
}

/// Splits `line` at spaces into pieces of at most `width` characters
/// (a longer word stays whole).
fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    for word in line.split(' ') {
        let last = out.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            out.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    out
}

/// `#[serde(with = "weft_config::display_fromstr")]` for a setting whose
/// type has `Display` and `FromStr` (addresses such as `unix:///…`).
pub mod display_fromstr {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the value as its `Display` string.
    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    /// Reads the value with `FromStr`.
    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
