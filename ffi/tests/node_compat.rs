//! A directory written by libcairn opens in a `cairn storage` node, and the reverse: same layout
//! file, same `core-N` logs, same routing by `ShardId::stable_hash() % N`.

mod support;

use bytes::Bytes;
use cairn::store::{Store, StoreConfig};
use cairn_common::{ShardId, ShardIndex};
use cairn_storage_client::StorageClient;

fn id(n: u128) -> ShardId {
    ShardId::new(n, 1, (n % 5) as u32, ShardIndex((n % 6) as u16))
}

fn content(n: u128, len_bytes: usize) -> Vec<u8> {
    (0..len_bytes)
        .map(|i| (i as u128 * 31 + n * 7) as u8)
        .collect()
}

fn len_for(n: u128) -> usize {
    1 + (n as usize * 4099) % 70_000
}

#[test]
fn library_and_storage_node_share_the_directory_format() {
    let scratch = tempfile::tempdir_in("/tmp").expect("scratch dir");
    let dir = scratch.path().join("store");

    // 1. The library creates the directory with 3 logs (not the CPU count, so that the node can
    //    only get it right by reading the layout file) and writes shards 0..40.
    let mut config = StoreConfig::new(&dir);
    config.logs = Some(3);
    config.segment_size_bytes = 8 << 20;
    let store = Store::open(config.clone()).expect("library opens");
    for n in 0..40 {
        let data = content(n, len_for(n));
        let crc = crc32c::crc32c(&data);
        store.put(id(n), Bytes::from(data), crc).expect("put");
    }
    assert!(store.delete(id(39)).expect("delete"));
    store.close();

    // 2. A storage node opens it, serves every shard, and writes shards 100..120.
    let address = support::start_node(&dir, 0);
    let mut client = StorageClient::connect(address).expect("client connects");
    let health = client.health().expect("health");
    println!("node health after opening the library's directory: {health:?}");
    for n in 0..39 {
        let read = client.get(id(n), None).expect("node reads a library shard");
        assert_eq!(read, content(n, len_for(n)), "shard {n}");
    }
    assert!(
        client.get(id(39), None).is_err(),
        "deleted shard stays deleted"
    );
    for n in 100..120 {
        client
            .put(id(n), &content(n, len_for(n)))
            .expect("node put");
    }

    // 3. The library opens what the node wrote (the node is idle now; the test process ends with
    //    it) and reads both generations back.
    let store = Store::open(config).expect("library reopens the node's directory");
    assert_eq!(store.log_count(), 3);
    for n in (0..39).chain(100..120) {
        let read = store.get(id(n), None).expect("library reads");
        assert_eq!(
            read.data.as_ref(),
            content(n, len_for(n)).as_slice(),
            "shard {n}"
        );
    }
    let listed = store.scan(None, 1000).expect("scan");
    assert_eq!(listed.len(), 39 + 20);
    assert!(
        listed
            .windows(2)
            .all(|pair| pair[0].shard_id < pair[1].shard_id)
    );
    store.close();
}
