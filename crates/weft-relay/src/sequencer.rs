//! What the relay reads from the sequencer's HTTP API: a builder's balance
//! (`GET /v1/accounts/{address}`) and the validator directory
//! (`GET /v1/validators`), behind [`SequencerApi`] so tests use a fake.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use weft_core::{Address, Amount, PublicKey};

/// Why the sequencer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    /// No answer, or an HTTP error.
    #[error("sequencer API: {0}")]
    Unreachable(String),
    /// An answer that does not parse.
    #[error("sequencer API answered something unexpected: {0}")]
    Malformed(String),
}

/// A balance and the height it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Spendable balance.
    pub balance: Amount,
    /// The sequencer's latest committed height when it answered.
    pub height: u64,
}

/// One validator as the relay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorEntry {
    /// In the active set now.
    pub active: bool,
    /// The key its winner fetches are signed with, if registered.
    pub relay_key: Option<PublicKey>,
}

/// The validators by operator address, at a height.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// The height the sequencer read the set at.
    pub height: u64,
    /// Every validator it listed.
    pub validators: BTreeMap<Address, ValidatorEntry>,
}

/// The sequencer reads the relay makes.
#[async_trait::async_trait]
pub trait SequencerApi: Send + Sync + 'static {
    /// The account's balance at the sequencer's latest height.
    async fn balance(&self, address: &Address) -> Result<Balance, SequencerError>;
    /// The validator directory at the sequencer's latest height.
    async fn directory(&self) -> Result<Directory, SequencerError>;
}

/// The sequencer's HTTP API.
pub struct HttpSequencer {
    base: String,
    client: reqwest::Client,
}

impl HttpSequencer {
    /// A client of the API at `base` (`http://host:port`). Every request
    /// gives up after `timeout`: a slow sequencer must not hold bids.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, SequencerError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| SequencerError::Unreachable(e.to_string()))?;
        Ok(HttpSequencer {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, SequencerError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| SequencerError::Unreachable(format!("GET {url}: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SequencerError::Unreachable(format!("GET {url}: {e}")))?;
        if !status.is_success() {
            return Err(SequencerError::Unreachable(format!(
                "GET {url}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(512)])
            )));
        }
        serde_json::from_slice(&body).map_err(|e| SequencerError::Malformed(format!("{url}: {e}")))
    }
}

#[derive(Deserialize)]
struct AccountJson {
    balance: String,
    height: u64,
}

/// `GET /v1/validators` as the sequencer prints it; unknown fields are
/// ignored so the relay keeps working as the answer grows.
#[derive(Deserialize)]
struct ValidatorsJson {
    height: u64,
    validators: Vec<ValidatorJson>,
}

#[derive(Deserialize)]
struct ValidatorJson {
    operator: String,
    active: bool,
    #[serde(default)]
    relay_key: Option<String>,
}

/// Parses the `GET /v1/validators` body.
pub fn parse_directory(body: &[u8]) -> Result<Directory, SequencerError> {
    let v: ValidatorsJson =
        serde_json::from_slice(body).map_err(|e| SequencerError::Malformed(e.to_string()))?;
    directory_of(v)
}

fn directory_of(v: ValidatorsJson) -> Result<Directory, SequencerError> {
    let mut validators = BTreeMap::new();
    for entry in v.validators {
        let operator: Address = entry
            .operator
            .parse()
            .map_err(|e| SequencerError::Malformed(format!("operator {}: {e}", entry.operator)))?;
        let relay_key = match entry.relay_key {
            None => None,
            Some(hex_key) => {
                let mut key = [0u8; 32];
                hex::decode_to_slice(&hex_key, &mut key).map_err(|e| {
                    SequencerError::Malformed(format!("relay_key of {operator}: {e}"))
                })?;
                Some(PublicKey(key))
            }
        };
        validators.insert(
            operator,
            ValidatorEntry {
                active: entry.active,
                relay_key,
            },
        );
    }
    Ok(Directory {
        height: v.height,
        validators,
    })
}

#[async_trait::async_trait]
impl SequencerApi for HttpSequencer {
    async fn balance(&self, address: &Address) -> Result<Balance, SequencerError> {
        let a: AccountJson = self.get(&format!("/v1/accounts/{address}")).await?;
        let balance = a
            .balance
            .parse()
            .map_err(|e| SequencerError::Malformed(format!("balance {:?}: {e}", a.balance)))?;
        Ok(Balance {
            balance,
            height: a.height,
        })
    }

    async fn directory(&self) -> Result<Directory, SequencerError> {
        let v: ValidatorsJson = self.get("/v1/validators").await?;
        directory_of(v)
    }
}

#[cfg(test)]
mod tests {
    use weft_core::SigningKey;

    use super::*;

    #[test]
    fn the_validator_directory_parses_and_ignores_unknown_fields() {
        let op = SigningKey::from_seed("op").address();
        let other = SigningKey::from_seed("other").address();
        let key = SigningKey::from_seed("relay").public_key();
        let body = serde_json::json!({
            "height": 12, "total_power": 30, "nakamoto_coefficient": 1,
            "validators": [
                { "operator": op.to_string(), "consensus_key": "00", "power": 20,
                  "active": true, "relay_key": key.to_hex(), "name": "a", "commission_bps": 5 },
                { "operator": other.to_string(), "consensus_key": "11", "power": 10,
                  "active": false, "relay_key": null },
            ],
        });
        let d = parse_directory(body.to_string().as_bytes()).unwrap();
        assert_eq!(d.height, 12);
        assert_eq!(
            d.validators[&op],
            ValidatorEntry {
                active: true,
                relay_key: Some(key)
            }
        );
        assert_eq!(
            d.validators[&other],
            ValidatorEntry {
                active: false,
                relay_key: None
            }
        );
    }

    #[test]
    fn a_bad_directory_is_an_error_not_a_panic() {
        for body in [
            r#"{"height":1,"validators":[{"operator":"nope","active":true}]}"#,
            r#"{"height":1,"validators":[{"operator":"weft1qqqq","active":true}]}"#,
            r#"{"height":1}"#,
            "[]",
        ] {
            assert!(parse_directory(body.as_bytes()).is_err(), "{body}");
        }
        let op = SigningKey::from_seed("op").address();
        let short_key = format!(
            r#"{{"height":1,"validators":[{{"operator":"{op}","active":true,"relay_key":"abcd"}}]}}"#
        );
        assert!(parse_directory(short_key.as_bytes()).is_err());
    }
}
