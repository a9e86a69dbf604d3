//! Keeps `docs/protocol.md` honest about numbers: every limit, default,
//! tag and result code the code defines must appear in the page next to its
//! name, so changing one without the page fails here.

use std::path::PathBuf;

use weft_core::{
    bid::{
        MAX_BID_BUNDLES, MAX_BID_BYTES, MAX_BID_DATA_BYTES, MAX_BUNDLE_PAYLOADS,
        MAX_RELAY_REQUEST_BYTES,
    },
    block::{COMMITMENTS_ITEM_LEN, COMMITMENTS_MAGIC, COMMITMENTS_VERSION},
    envelope::{ENVELOPE_MAGIC, ENVELOPE_VERSION, MAX_ENVELOPE_BYTES, MAX_ENVELOPE_TXS},
    keys::ADDRESS_PREFIX,
    merkle::MAX_AUNTS,
    transaction::{
        SigningDomain, MAX_ACTIONS, MAX_CHAIN_ID_LEN, MAX_COMMISSION_BPS, MAX_TX_BYTES,
        MAX_VALIDATOR_NAME_LEN, MAX_VALIDATOR_WEBSITE_LEN,
    },
    ChainParams, StakingParams, TxCode,
};

fn protocol_doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether `line` holds `number` as a whole number (not as part of a
/// longer one), written plainly or with `,` or `_` between digit groups.
fn has_number(line: &str, number: &str) -> bool {
    let digits_only: String = line.chars().filter(|c| *c != ',' && *c != '_').collect();
    digits_only.match_indices(number).any(|(at, _)| {
        let before = digits_only[..at].chars().next_back();
        let after = digits_only[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Fails unless one line of the page names `` `name` `` and states `value`.
fn assert_documented(doc: &str, name: &str, value: &str) {
    let quoted = format!("`{name}`");
    assert!(
        doc.lines()
            .any(|l| l.contains(&quoted) && has_number(l, value)),
        "docs/protocol.md must state {name} = {value} on one line (e.g. a table row \
         `| `{name}` | {value} | … |`); the code and the page disagree or the page \
         does not mention it"
    );
}

#[test]
fn the_number_check_matches_whole_numbers_only() {
    assert!(has_number("| `MAX_ACTIONS` | 64 |", "64"));
    assert!(has_number("| x | 1,048,576 |", "1048576"));
    assert!(!has_number("| x | 640 |", "64"));
    assert!(!has_number("| x | 164 |", "64"));
}

#[test]
fn every_limit_is_in_the_protocol_page() {
    let doc = protocol_doc();
    let limits: [(&str, usize); 9] = [
        ("ENVELOPE_VERSION", usize::from(ENVELOPE_VERSION)),
        ("MAX_ENVELOPE_TXS", MAX_ENVELOPE_TXS),
        ("MAX_ENVELOPE_BYTES", MAX_ENVELOPE_BYTES),
        ("MAX_TX_BYTES", MAX_TX_BYTES),
        ("MAX_ACTIONS", MAX_ACTIONS),
        ("MAX_CHAIN_ID_LEN", MAX_CHAIN_ID_LEN),
        ("COMMITMENTS_ITEM_LEN", COMMITMENTS_ITEM_LEN),
        ("COMMITMENTS_VERSION", usize::from(COMMITMENTS_VERSION)),
        ("MAX_AUNTS", MAX_AUNTS),
    ];
    for (name, value) in limits {
        assert_documented(&doc, name, &value.to_string());
    }
}

#[test]
fn every_chain_parameter_default_is_in_the_protocol_page() {
    let doc = protocol_doc();
    let p = ChainParams::default();
    // Destructured so a new parameter cannot be added without a line here.
    let ChainParams {
        base_fee,
        fee_per_byte,
        max_rollup_data_per_tx,
        max_rollup_data_per_block,
        max_txs_per_account_per_block,
    } = p;
    for (name, value) in [
        ("base_fee", base_fee.to_string()),
        ("fee_per_byte", fee_per_byte.to_string()),
        ("max_rollup_data_per_tx", max_rollup_data_per_tx.to_string()),
        (
            "max_rollup_data_per_block",
            max_rollup_data_per_block.to_string(),
        ),
        (
            "max_txs_per_account_per_block",
            max_txs_per_account_per_block.to_string(),
        ),
    ] {
        assert_documented(&doc, name, &value);
    }
}

#[test]
fn every_result_code_is_in_the_protocol_page() {
    let doc = protocol_doc();
    for code in TxCode::ALL {
        assert_documented(&doc, code.name(), &code.value().to_string());
    }
}

#[test]
fn tags_and_prefixes_are_in_the_protocol_page() {
    let doc = protocol_doc();
    let tag = |d: SigningDomain| std::str::from_utf8(d.tag()).expect("tags are ASCII");
    let magic = std::str::from_utf8(&COMMITMENTS_MAGIC).expect("the magic is ASCII");
    let envelope = std::str::from_utf8(&ENVELOPE_MAGIC).expect("the magic is ASCII");
    for text in [
        envelope,
        tag(SigningDomain::Transaction),
        tag(SigningDomain::Bid),
        tag(SigningDomain::RelayRequest),
        magic,
        ADDRESS_PREFIX,
    ] {
        assert!(
            doc.contains(&format!("`{text}`")),
            "docs/protocol.md must spell `{text}` exactly"
        );
    }
}

#[test]
fn staking_limits_and_parameter_defaults_are_documented() {
    let doc = protocol_doc();
    for (name, value) in [
        ("MAX_VALIDATOR_NAME_LEN", MAX_VALIDATOR_NAME_LEN),
        ("MAX_VALIDATOR_WEBSITE_LEN", MAX_VALIDATOR_WEBSITE_LEN),
        ("MAX_COMMISSION_BPS", usize::from(MAX_COMMISSION_BPS)),
    ] {
        assert_documented(&doc, name, &value.to_string());
    }
    // CometBFT's `MaxTotalVotingPower`.
    assert_documented(&doc, "MAX_TOTAL_POWER", &(i64::MAX / 8).to_string());
    assert_documented(
        &doc,
        "MAX_DOWNTIME_WINDOW_BLOCKS",
        &weft_core::genesis::MAX_DOWNTIME_WINDOW_BLOCKS.to_string(),
    );
    let governance = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/governance.md"),
    )
    .expect("docs/governance.md exists");
    // Destructured so a new parameter cannot be added without a line here.
    let StakingParams {
        unbonding_blocks,
        epoch_blocks,
        max_validators,
        max_power_share_bps,
        min_self_bond,
        slash_double_sign_bps,
        slash_downtime_bps,
        downtime_window_blocks,
        downtime_max_missed_bps,
        jail_blocks,
        max_commission_change_bps,
    } = StakingParams::default();
    for (name, value) in [
        ("unbonding_blocks", unbonding_blocks.to_string()),
        ("epoch_blocks", epoch_blocks.to_string()),
        ("max_validators", max_validators.to_string()),
        ("max_power_share_bps", max_power_share_bps.to_string()),
        ("min_self_bond", min_self_bond.to_string()),
        ("slash_double_sign_bps", slash_double_sign_bps.to_string()),
        ("slash_downtime_bps", slash_downtime_bps.to_string()),
        ("downtime_window_blocks", downtime_window_blocks.to_string()),
        (
            "downtime_max_missed_bps",
            downtime_max_missed_bps.to_string(),
        ),
        ("jail_blocks", jail_blocks.to_string()),
        (
            "max_commission_change_bps",
            max_commission_change_bps.to_string(),
        ),
    ] {
        assert_documented(&doc, name, &value);
        assert!(
            governance
                .lines()
                .any(|l| l.contains(&format!("`{name}`")) && has_number(l, &value)),
            "docs/governance.md must state {name} = {value} on one line"
        );
    }
}

#[test]
fn inclusion_limits_and_parameter_defaults_are_documented() {
    use weft_core::{
        inclusion::{INCLUSION_VERSION, MAX_INCLUSION_LIST_BYTES, MAX_LISTED_VOTES},
        InclusionParams,
    };
    let doc = protocol_doc();
    for (name, value) in [
        ("MAX_INCLUSION_LIST_BYTES", MAX_INCLUSION_LIST_BYTES),
        ("MAX_LISTED_VOTES", MAX_LISTED_VOTES),
        ("INCLUSION_VERSION", usize::from(INCLUSION_VERSION)),
    ] {
        assert_documented(&doc, name, &value.to_string());
    }
    let censorship = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/censorship-resistance.md"),
    )
    .expect("docs/censorship-resistance.md exists");
    // Destructured so a new parameter cannot be added without a line here.
    let InclusionParams {
        enabled,
        inclusion_delay_blocks,
        max_inclusion_list_bytes,
    } = InclusionParams::default();
    assert!(enabled, "lists are on by default");
    assert!(doc
        .lines()
        .any(|l| l.contains("`enabled`") && l.contains("true")));
    for (name, value) in [
        ("inclusion_delay_blocks", inclusion_delay_blocks.to_string()),
        (
            "max_inclusion_list_bytes",
            max_inclusion_list_bytes.to_string(),
        ),
    ] {
        assert_documented(&doc, name, &value);
        assert!(
            censorship
                .lines()
                .any(|l| l.contains(&format!("`{name}`")) && has_number(l, &value)),
            "docs/censorship-resistance.md must state {name} = {value} on one line"
        );
    }
}

#[test]
fn bid_limits_are_documented() {
    let doc = protocol_doc();
    for (name, value) in [
        ("MAX_BID_BYTES", MAX_BID_BYTES),
        ("MAX_BID_BUNDLES", MAX_BID_BUNDLES),
        ("MAX_BUNDLE_PAYLOADS", MAX_BUNDLE_PAYLOADS),
        ("MAX_BID_DATA_BYTES", MAX_BID_DATA_BYTES),
        ("MAX_RELAY_REQUEST_BYTES", MAX_RELAY_REQUEST_BYTES),
    ] {
        assert_documented(&doc, name, &value.to_string());
    }
}

#[test]
fn auction_limits_and_parameter_defaults_are_documented() {
    use weft_core::{bid::BID_ITEM_MAGIC, genesis::MAX_BIDS_PER_BLOCK, AuctionParams};
    let doc = protocol_doc();
    assert_documented(&doc, "MAX_BIDS_PER_BLOCK", &MAX_BIDS_PER_BLOCK.to_string());
    let magic = std::str::from_utf8(&BID_ITEM_MAGIC).expect("ASCII magic");
    assert!(
        doc.lines()
            .any(|l| l.contains("`BID_ITEM_MAGIC`") && l.contains(&format!("`{magic}`"))),
        "BID_ITEM_MAGIC = {magic} must be in the page"
    );
    // Destructured so a new parameter cannot be added without a line here.
    let AuctionParams {
        enabled,
        max_bids_per_block,
    } = AuctionParams::default();
    assert!(
        enabled,
        "the auction is on by default where the section exists"
    );
    assert_documented(&doc, "max_bids_per_block", &max_bids_per_block.to_string());
}
