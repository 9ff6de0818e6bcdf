//! Model-based property test: random creates, deletes and sets go through the real
//! prepare stage and tree (no network), and every answer and every node is checked
//! against a `BTreeMap` model of ZooKeeper's rules.

use std::collections::BTreeMap;

use bytes::Bytes;
use jute::records::{Acl, CreateRequest, DeleteRequest, Id, SetDataRequest};
use jute::{Code, OpCode};
use proptest::prelude::*;
use zkrs::prepare::{Context, Preparer, SessionCheck};
use zkrs::proto::Request;
use zkrs::session::{AuthIds, SessionTracker};
use zkrs::tree::Database;
use zkrs::txn::{SessionId, Txn, TxnBody, Zxid};

const SESSION: SessionId = SessionId::new(0x77);

#[derive(Debug, Clone)]
enum Op {
    Create { path: String, data: Vec<u8>, ephemeral: bool, sequential: bool },
    Delete { path: String, version: i32 },
    Set { path: String, data: Vec<u8>, version: i32 },
}

#[derive(Debug, Clone, PartialEq)]
struct ModelNode {
    data: Vec<u8>,
    version: i32,
    creations: i32,
    ephemeral: bool,
}

fn path_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "c"], 1..4)
        .prop_map(|names| format!("/{}", names.join("/")))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let data = proptest::collection::vec(any::<u8>(), 0..8);
    prop_oneof![
        3 => (path_strategy(), data.clone(), any::<bool>(), proptest::bool::weighted(0.2))
            .prop_map(|(path, data, ephemeral, sequential)| Op::Create { path, data, ephemeral, sequential }),
        2 => (path_strategy(), -1i32..3).prop_map(|(path, version)| Op::Delete { path, version }),
        2 => (path_strategy(), data, -1i32..3).prop_map(|(path, data, version)| Op::Set { path, data, version }),
    ]
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(slash) => &path[..slash],
    }
}

struct Model {
    nodes: BTreeMap<String, ModelNode>,
}

impl Model {
    fn new() -> Model {
        let root = ModelNode { data: Vec::new(), version: 0, creations: 0, ephemeral: false };
        Model { nodes: BTreeMap::from([("/".to_owned(), root)]) }
    }

    fn children(&self, path: &str) -> usize {
        self.nodes.keys().filter(|other| other.as_str() != "/" && parent_of(other) == path).count()
    }

    /// The expected outcome: the created path, or the error code.
    fn apply(&mut self, op: &Op) -> Result<String, Code> {
        match op {
            Op::Create { path, data, ephemeral, sequential } => {
                let parent = parent_of(path).to_owned();
                let parent_node = self.nodes.get(&parent).ok_or(Code::NoNode)?;
                let path = if *sequential {
                    format!("{path}{:010}", parent_node.creations)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&path) {
                    return Err(Code::NodeExists);
                }
                if parent_node.ephemeral {
                    return Err(Code::NoChildrenForEphemerals);
                }
                if let Some(parent_node) = self.nodes.get_mut(&parent) {
                    parent_node.creations += 1;
                }
                let node = ModelNode {
                    data: data.clone(),
                    version: 0,
                    creations: 0,
                    ephemeral: *ephemeral,
                };
                self.nodes.insert(path.clone(), node);
                Ok(path)
            }
            Op::Delete { path, version } => {
                let node = self.nodes.get(path).ok_or(Code::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(Code::BadVersion);
                }
                if self.children(path) > 0 {
                    return Err(Code::NotEmpty);
                }
                self.nodes.remove(path);
                Ok(String::new())
            }
            Op::Set { path, data, version } => {
                let node = self.nodes.get_mut(path).ok_or(Code::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(Code::BadVersion);
                }
                node.version += 1;
                node.data = data.clone();
                Ok(String::new())
            }
        }
    }
}

fn request(op: &Op) -> Request {
    let open = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    match op {
        Op::Create { path, data, ephemeral, sequential } => Request::Create {
            op: OpCode::Create,
            request: CreateRequest {
                path: path.clone(),
                data: Some(Bytes::from(data.clone())),
                acl: open,
                flags: i32::from(*ephemeral) | (i32::from(*sequential) << 1),
            },
        },
        Op::Delete { path, version } => {
            Request::Delete(DeleteRequest { path: path.clone(), version: *version })
        }
        Op::Set { path, data, version } => Request::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(Bytes::from(data.clone())),
            version: *version,
        }),
    }
}

fn outcome(txn: &Txn, result_path: &str) -> Result<String, Code> {
    match &txn.body {
        TxnBody::Error(error) => Err(Code::from_i32(error.err).unwrap_or(Code::SystemError)),
        TxnBody::Create(_) => Ok(result_path.to_owned()),
        _ => Ok(String::new()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn tree_matches_a_btreemap_model(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        let database = Database::new(false);
        let mut sessions = SessionTracker::new(1000, SessionId::new(1));
        sessions.add(SESSION, 10_000, 0);
        let auth = AuthIds::for_client("127.0.0.1".parse().expect("ip"));
        let mut preparer = Preparer::new(Zxid::ZERO);
        let mut model = Model::new();
        for (index, op) in ops.iter().enumerate() {
            let context = Context {
                tree: database.tree(),
                sessions: &sessions,
                auth: &auth,
                session_id: SESSION,
                session_check: SessionCheck::Tracker,
                extended_types_enabled: false,
                reconfig_enabled: false,
            enforce_quota: false,
            digest_auth_enabled: true,
            };
            let txn = preparer.prepare(&context, &request(op), 1, index as i64).expect("a txn");
            let result = database.apply(&txn, &mut |_, _| {});
            preparer.applied(txn.zxid());
            prop_assert_eq!(outcome(&txn, &result.path), model.apply(op), "op {} {:?}", index, op);
        }
        let tree = database.tree();
        prop_assert_eq!(tree.node_count(), model.nodes.len() + 3, "the model has no /zookeeper subtree");
        for (path, node) in &model.nodes {
            let stat = tree.stat(path).expect("node exists");
            let children = model.children(path) + usize::from(path == "/");
            prop_assert_eq!(stat.version, node.version, "{}", path);
            prop_assert_eq!(stat.num_children as usize, children, "{}", path);
            prop_assert_eq!(stat.cversion, 2 * node.creations - children as i32, "{}", path);
            prop_assert_eq!(stat.ephemeral_owner, if node.ephemeral { SESSION.raw() } else { 0 }, "{}", path);
            let data = tree.with_node(path, |n, _| n.data().map(<[u8]>::to_vec)).flatten();
            if path != "/" {
                prop_assert_eq!(data.as_deref(), Some(node.data.as_slice()), "{}", path);
            }
        }
    }
}
