//! JSON as ZooKeeper's AdminServer prints it (Jackson's default pretty printer): two
//! spaces of indentation per object level, `"key" : value`, arrays on one line as
//! `[ a, b ]` with objects in them opened inline, `{ }` and `[ ]` when empty, and no
//! newline at the end. Scripts parse it either way; printing it alike lets an operator
//! diff zkrs's answers against ZooKeeper's.

use serde_json::Value;

/// `value` printed as Jackson's `INDENT_OUTPUT` prints it.
pub fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, 0, &mut out);
    out
}

fn write_value(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{ }"),
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(depth + 1, out);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(" : ");
                write_value(item, depth + 1, out);
            }
            out.push('\n');
            indent(depth, out);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[ ]"),
        Value::Array(items) => {
            out.push_str("[ ");
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(item, depth, out);
            }
            out.push_str(" ]");
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prints_as_jackson_does() {
        // Shapes and spacing copied from ZooKeeper 3.8's `connections` and `dump`.
        let value = json!({
            "connections": [{"remote_socket_address": "127.0.0.1:58028", "interest_ops": 1}],
            "secure_connections": [],
            "expiry_time_to_session_ids": {"11296000": [72058329787465728_i64]},
            "current_config": {},
            "avg_latency": 1.6667,
            "connection_drop_probability": 0.0,
            "error": null
        });
        let expected = "{\n  \"connections\" : [ {\n    \"remote_socket_address\" : \
                        \"127.0.0.1:58028\",\n    \"interest_ops\" : 1\n  } ],\n  \
                        \"secure_connections\" : [ ],\n  \"expiry_time_to_session_ids\" : {\n    \
                        \"11296000\" : [ 72058329787465728 ]\n  },\n  \"current_config\" : { },\n  \
                        \"avg_latency\" : 1.6667,\n  \"connection_drop_probability\" : 0.0,\n  \
                        \"error\" : null\n}";
        assert_eq!(pretty(&value), expected);
    }
}
