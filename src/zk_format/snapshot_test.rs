use super::*;

const FIXTURES: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zookeeper-3.8/version-2");

/// A snapshot's bytes read as a file's would be (`path` names it in errors).
fn decode(bytes: &Bytes, zxid: i64, path: &str) -> Result<Snapshot, ZkFileError> {
    let mut collected = Collected::default();
    read_stream(&mut &bytes[..], path, &mut |piece| collected.take(piece))?;
    Ok(collected.into_snapshot(zxid))
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(FIXTURES).join(name)
}

fn node<'a>(snapshot: &'a Snapshot, path: &str) -> &'a SnapshotNode {
    snapshot.nodes.iter().find(|node| node.path == path).unwrap_or_else(|| panic!("{path}"))
}

#[test]
fn the_first_snapshot_holds_the_system_nodes() {
    let snapshot = read_snapshot(&fixture("snapshot.0")).expect("reads");
    assert_eq!(snapshot.zxid, 0);
    assert!(snapshot.sessions.is_empty());
    let paths: Vec<&str> = snapshot.nodes.iter().map(|node| node.path.as_str()).collect();
    assert_eq!(paths, ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]);
    assert_eq!(node(&snapshot, "/").acl, [open_acl()]);
    assert_eq!(node(&snapshot, "/zookeeper/config").acl[0].perms, 1, "world:anyone:r");
}

#[test]
fn a_snapshot_holds_nodes_stats_acls_and_sessions() {
    let snapshot = read_snapshot(&fixture("snapshot.10")).expect("reads");
    assert_eq!(snapshot.zxid, 0x10);
    let session = 0x0100_0048_870d_0000;
    assert_eq!(snapshot.sessions.len(), 1);
    assert_eq!(snapshot.sessions[0].0, session);

    let app = node(&snapshot, "/app");
    assert_eq!(app.data.as_deref(), Some(&b"changed"[..]));
    assert_eq!(app.stat.version, 1);
    assert_eq!(app.stat.ephemeral_owner, 0);
    assert!(app.stat.mzxid > app.stat.czxid);
    assert!(app.stat.pzxid > app.stat.czxid, "children came and went");

    assert_eq!(node(&snapshot, "/app/eph").stat.ephemeral_owner, session);
    assert_eq!(node(&snapshot, "/deep/a/b").data, None, "null data stays null");
    assert!(!snapshot.nodes.iter().any(|node| node.path == "/app/n-0000000001"), "deleted");
    assert!(snapshot.nodes.iter().any(|node| node.path == "/app/n-0000000004"));

    let acl = &node(&snapshot, "/acl").acl;
    let schemes: Vec<&str> = acl.iter().map(|acl| acl.id.scheme.as_str()).collect();
    assert_eq!(schemes, ["digest", "ip"]);
    assert_eq!(acl[0].perms, 31);
    assert!(acl[0].id.id.starts_with("alice:"));
    assert_eq!(acl[1].id.id, "127.0.0.1");
    assert_eq!(acl[1].perms, 1);

    // Parents come before their children.
    for (index, node) in snapshot.nodes.iter().enumerate().skip(1) {
        let parent = node.path.rsplit_once('/').map_or("/", |(parent, _)| parent);
        let parent = if parent.is_empty() { "/" } else { parent };
        assert!(snapshot.nodes[..index].iter().any(|earlier| earlier.path == parent));
    }
}

#[test]
fn a_changed_byte_fails_the_seal() {
    let bytes = std::fs::read(fixture("snapshot.10")).expect("fixture");
    let clean = Bytes::from(bytes.clone());
    assert!(decode(&clean, 0x10, "snapshot.10").is_ok());
    // A byte inside /app's data.
    let at = bytes.windows(7).position(|window| window == b"changed").expect("data");
    let mut damaged = bytes;
    damaged[at] ^= 0x20;
    let err = decode(&Bytes::from(damaged), 0x10, "snapshot.10").expect_err("refused");
    assert!(matches!(err, ZkFileError::Checksum { .. }), "{err}");
}

#[test]
fn a_cut_snapshot_or_another_file_is_refused() {
    let bytes = std::fs::read(fixture("snapshot.10")).expect("fixture");
    let cut = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    assert!(matches!(decode(&cut, 0x10, "cut"), Err(ZkFileError::Malformed { .. })));
    let log = Bytes::from(std::fs::read(fixture("log.1")).expect("fixture"));
    assert!(matches!(decode(&log, 1, "log.1"), Err(ZkFileError::NotThisKind { .. })));
}

#[test]
fn snapshots_compressed_by_gzip_or_snappy_read_the_same() {
    let compressed = Path::new(FIXTURES).join("../../zookeeper-3.8-compressed/version-2");
    let gzip = read_snapshot(&compressed.join("snapshot.4.gz")).expect("gzip");
    let snappy = read_snapshot(&compressed.join("snapshot.4.snappy")).expect("snappy");
    // Two servers made them: the same nodes, created at other times.
    let contents = |snapshot: &Snapshot| -> Vec<(String, Option<Bytes>)> {
        snapshot.nodes.iter().map(|node| (node.path.clone(), node.data.clone())).collect()
    };
    assert_eq!(contents(&gzip), contents(&snappy));
    assert_eq!((gzip.zxid, snappy.zxid), (4, 4));
    let node = node(&gzip, "/compressed");
    assert_eq!(node.data.as_deref(), Some(&b"data ".repeat(100)[..]));
    assert!(gzip.nodes.iter().any(|node| node.path == "/compressed/child"));

    let garbage = std::env::temp_dir().join(format!("snapshot.9.gz-{}", std::process::id()));
    std::fs::write(&garbage, b"not gzip at all").expect("write");
    let named = garbage.with_file_name(format!("zkrs-{}-snapshot.9.gz", std::process::id()));
    std::fs::rename(&garbage, &named).expect("rename");
    assert!(matches!(read_snapshot(&named), Err(ZkFileError::Compressed { .. })));
    let _ = std::fs::remove_file(&named);
}

#[test]
fn an_encoded_snapshot_decodes_to_what_was_encoded() {
    let snapshot = read_snapshot(&fixture("snapshot.10")).expect("reads");
    let encoded = encode(&snapshot).freeze();
    assert_eq!(decode(&encoded, 0x10, "encoded").expect("decodes"), snapshot);
    let empty = read_snapshot(&fixture("snapshot.0")).expect("reads");
    assert_eq!(decode(&encode(&empty).freeze(), 0, "encoded").expect("decodes"), empty);
}

#[test]
fn a_transferred_snapshot_waits_while_cut_short_and_refuses_another_signature() {
    let snapshot = read_snapshot(&fixture("snapshot.10")).expect("reads");
    let bytes = encode_transferred(&snapshot);
    let cut = &bytes[..bytes.len() - 1];
    assert_eq!(TransferReader::new().feed(cut, &mut Vec::new()).expect("no error"), None);
    let mut forged = BytesMut::from(&bytes[..bytes.len() - 10]);
    forged.extend_from_slice(b"NotBenHere");
    assert!(TransferReader::new().feed(&forged, &mut Vec::new()).is_err(), "another signature");
}

#[test]
fn a_transferred_snapshot_is_read_piece_by_piece_as_its_bytes_come() {
    let snapshot = read_snapshot(&fixture("snapshot.10")).expect("reads");
    let mut bytes = encode_transferred(&snapshot);
    bytes.extend_from_slice(b"next packet");
    // A piece is at most a node (its data, its path, a stat) or the small ACL cache.
    let largest = snapshot
        .nodes
        .iter()
        .map(|node| node.path.len() + node.data.as_ref().map_or(0, |data| data.len()) + 1024);
    let largest = largest.max().unwrap_or_default();
    for chunk in [1, 7, 64, 4096] {
        let mut reader = TransferReader::new();
        let mut pieces = Vec::new();
        // What follows the snapshot: the rest of the chunk that ended it, then the stream.
        let mut after: Option<Vec<u8>> = None;
        for part in bytes.chunks(chunk) {
            match &mut after {
                Some(after) => after.extend_from_slice(part),
                None => {
                    let rest = reader.feed(part, &mut pieces).expect("a snapshot");
                    after = rest.map(|rest| rest.to_vec());
                    assert!(reader.pending.len() <= largest + chunk, "only the piece in progress");
                }
            }
        }
        assert_eq!(after.as_deref(), Some(&b"next packet"[..]), "chunks of {chunk}");
        let mut expected = vec![TransferPiece::Sessions(snapshot.sessions.clone())];
        expected.extend(snapshot.nodes.iter().cloned().map(TransferPiece::Node));
        assert_eq!(pieces, expected);
    }
}

#[test]
fn a_transferred_piece_claiming_more_than_the_limit_is_refused() {
    let mut claim = BytesMut::new();
    write_i32(&mut claim, 0);
    write_i32(&mut claim, 0);
    write_i32(&mut claim, i32::MAX);
    assert!(TransferReader::new().feed(&claim, &mut Vec::new()).is_err());
}

#[test]
fn a_snapshot_streams_piece_by_piece_and_a_refused_piece_makes_it_invalid() {
    let mut pieces = 0usize;
    let zxid = stream_snapshot(&fixture("snapshot.10"), &mut |_| {
        pieces += 1;
        Ok(())
    })
    .expect("streams");
    assert_eq!(zxid, 0x10);
    let whole = read_snapshot(&fixture("snapshot.10")).expect("reads");
    assert_eq!(pieces, whole.nodes.len() + 1, "the sessions, then each node");
    let refused = stream_snapshot(&fixture("snapshot.10"), &mut |piece| match piece {
        TransferPiece::Node(node) if node.path == "/app" => Err("no parent".into()),
        _ => Ok(()),
    });
    assert!(matches!(refused, Err(ZkFileError::InvalidTree { .. })), "{refused:?}");
}
