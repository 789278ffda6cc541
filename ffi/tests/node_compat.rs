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

    // 3. While the node runs, the directory is locked: the library refuses to open it.
    let refused = Store::open(config.clone());
    assert!(
        matches!(&refused, Err(error) if error.status == cairn::CairnStatus::Locked),
        "a running node holds the directory lock: {:?}",
        refused.as_ref().err()
    );

    // 4. A copy of the directory (every put above was acknowledged, so durable; the node is idle)
    //    opens in the library, which reads both generations back.
    let copy = scratch.path().join("copy");
    copy_tree(&dir, &copy);
    config.dir = copy;
    let store = Store::open(config).expect("library opens the node's directory");
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

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
