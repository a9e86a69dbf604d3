//! What a stopped node's store holds, table by table: entries, stored
//! bytes, metadata and fragmentation, from redb's own statistics.
//!
//!   cargo run --release -p weft-sequencer --example store_usage -- <home>/weft.redb
//!
//! Opens the file exclusively (as the sequencer does): stop the node
//! first, or point it at a copy.

use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: store_usage <path to weft.redb>")?;
    let db = redb::Database::open(&path)?;
    let txn = db.begin_read()?;
    let mut rows = Vec::new();
    for handle in txn.list_tables()? {
        let name = handle.name().to_string();
        let table = txn.open_untyped_table(handle)?;
        let stats = table.stats()?;
        rows.push((
            name,
            table.len()?,
            stats.stored_bytes(),
            stats.metadata_bytes(),
            stats.fragmented_bytes(),
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.2));
    println!("| table | entries | stored MiB | metadata MiB | fragmented MiB |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    for (name, len, stored, meta, frag) in rows {
        println!(
            "| {name} | {len} | {:.1} | {:.1} | {:.1} |",
            mib(stored),
            mib(meta),
            mib(frag)
        );
    }
    println!("file: {:.1} MiB", mib(std::fs::metadata(&path)?.len()));
    Ok(())
}
