//! ABCI `Query`: routes a path to the component that answers it. Paths:
//! `account/<address>`, `batch/<rollup id hex>/<height>`, `tx/<hash hex>`
//! (the tx's status),
//! `app_hash/<height>` (this node's own JMT root after that height),
//! `validators`, `validator/<address>`, `delegations/<address>`,
//! `proposals[?status=S&limit=N&cursor=C]`, `proposal/<id>` (the JSON of
//! the matching HTTP routes).
//! Values are JSON; errors are code 1 with a readable log.

use tendermint::abci::{request, response, Code};
use weft_core::{Address, Hash, RollupId};

use std::sync::Mutex;

use crate::{
    accounts, api,
    mempool::{self, Mempool},
    rollups,
    storage::Storage,
};

/// Answers one query.
pub fn handle(storage: &Storage, pool: &Mutex<Mempool>, req: request::Query) -> response::Query {
    let height = req.height.value();
    let path = req.path.trim_start_matches('/');
    match route(storage, pool, path, height) {
        Ok((value, at)) => response::Query {
            code: Code::Ok,
            value: value.into(),
            // The height the answer was read at, not the one asked for
            // (0 = latest) nor a constant.
            height: at.try_into().unwrap_or_default(),
            ..Default::default()
        },
        Err(log) => response::Query {
            code: Code::from(1),
            log,
            codespace: "weft".into(),
            height: latest(storage).try_into().unwrap_or_default(),
            ..Default::default()
        },
    }
}

/// The last committed height (0 before the first block).
fn latest(storage: &Storage) -> u64 {
    storage.committed().ok().flatten().map_or(0, |c| c.height)
}

fn route(
    storage: &Storage,
    pool: &Mutex<Mempool>,
    path: &str,
    height: u64,
) -> Result<(Vec<u8>, u64), String> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["account", addr] => {
            let address: Address = addr.parse().map_err(|e| format!("{e}"))?;
            let view = accounts::query::account(storage, Some(pool), &address, height).map_err(|e| e.to_string())?;
            Ok((to_json(&view)?, view.height))
        }
        ["batch", rollup, h] => {
            let rollup_id = RollupId::from_hex(rollup).map_err(|e| format!("rollup id: {e}"))?;
            let h: u64 = h.parse().map_err(|e| format!("height: {e}"))?;
            match rollups::query::batch(storage, &rollup_id, h).map_err(|e| e.to_string())? {
                Some(proof) => Ok((to_json(&proof)?, h)),
                None => Err(format!("height {h} is not committed")),
            }
        }
        ["app_hash", h] => {
            let h: u64 = h.parse().map_err(|e| format!("height: {e}"))?;
            match storage.root_at(h).map_err(|e| e.to_string())? {
                Some(root) => Ok((to_json(&root)?, h)),
                None => Err(format!("height {h} is not committed")),
            }
        }
        ["tx", hash] => {
            let hash = Hash::from_hex(hash).map_err(|e| format!("hash: {e}"))?;
            let at = latest(storage);
            let status = mempool::status(storage, pool, &hash).map_err(|e| e.to_string())?;
            Ok((to_json(&status)?, at))
        }
        // Staking and governance, the JSON of the matching HTTP routes,
        // read from one committed snapshot (the `height` argument is not
        // honoured: history is not kept for them).
        ["validators"] => {
            let snap = storage.snapshot().map_err(|e| e.to_string())?;
            let v = api::validators_at(&snap).map_err(|e| e.to_string())?;
            Ok((to_json(&v)?, v.height))
        }
        ["validator", addr] => {
            let operator: Address = addr.parse().map_err(|e| format!("{e}"))?;
            let snap = storage.snapshot().map_err(|e| e.to_string())?;
            let v = api::validator_at(&snap, &operator)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no validator is registered by operator {operator}"))?;
            Ok((to_json(&v)?, v.height))
        }
        ["delegations", addr] => {
            let address: Address = addr.parse().map_err(|e| format!("{e}"))?;
            let snap = storage.snapshot().map_err(|e| e.to_string())?;
            let v = api::delegations_at(&snap, &address).map_err(|e| e.to_string())?;
            Ok((to_json(&v)?, v.height))
        }
        [proposals] if *proposals == "proposals" || proposals.starts_with("proposals?") => {
            let q = api::ProposalsQuery::parse(
                proposals.strip_prefix("proposals").unwrap_or_default().trim_start_matches('?'),
            )?;
            let limit = q.page_size()?;
            let snap = storage.snapshot().map_err(|e| e.to_string())?;
            let v = api::proposals_at(&snap, &q, limit).map_err(|e| e.to_string())?;
            Ok((to_json(&v)?, v.height))
        }
        ["proposal", id] => {
            let id: u64 = id.parse().map_err(|e| format!("proposal id: {e}"))?;
            let snap = storage.snapshot().map_err(|e| e.to_string())?;
            let v = api::proposal_at(&snap, id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no proposal has id {id}"))?;
            Ok((to_json(&v)?, v.height))
        }
        _ => Err(format!(
            "unknown query path `{path}`; use account/<address>, batch/<rollup id>/<height>, tx/<hash>, app_hash/<height>, validators, validator/<address>, delegations/<address>, proposals[?status=S&limit=N&cursor=C] or proposal/<id>"
        )),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}
