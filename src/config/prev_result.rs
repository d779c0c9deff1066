//! Shape checks on `prevResult`. We pass it through, so we only make sure that what we append to
//! and hand on is a well-formed result: an object whose `interfaces`, `ips`, `routes` are arrays
//! of objects, interface names are strings, and `ips[].interface` indexes an existing interface.

use crate::error::Error;
use serde_json::{Map, Value};

pub fn parse(value: Option<&Value>) -> Result<Option<Map<String, Value>>, Error> {
    let result = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(Error::invalid("prevResult", other, "must be an object")),
    };
    let interface_count = match result.get("interfaces") {
        None => 0,
        Some(list) => {
            let items = array_of_objects(list, "prevResult.interfaces")?;
            for (i, item) in items.iter().enumerate() {
                match item.get("name") {
                    Some(Value::String(_)) => {}
                    other => {
                        return Err(Error::invalid(
                            format!("prevResult.interfaces[{i}].name"),
                            other.map_or("(missing)".into(), Value::to_string),
                            "must be a string",
                        ))
                    }
                }
            }
            items.len()
        }
    };
    if let Some(list) = result.get("ips") {
        for (i, ip) in array_of_objects(list, "prevResult.ips")?.iter().enumerate() {
            match ip.get("address") {
                Some(Value::String(addr))
                    if addr.contains('/') && addr.parse::<ipnetwork::IpNetwork>().is_ok() => {}
                other => {
                    return Err(Error::invalid(
                        format!("prevResult.ips[{i}].address"),
                        other.map_or("(missing)".into(), Value::to_string),
                        "must be an address in CIDR notation",
                    ))
                }
            }
            if let Some(index) = ip.get("interface") {
                let ok = index.as_u64().is_some_and(|n| (n as usize) < interface_count);
                if !ok {
                    return Err(Error::invalid(
                        format!("prevResult.ips[{i}].interface"),
                        index,
                        format!("must index prevResult.interfaces (it has {interface_count})"),
                    ));
                }
            }
        }
    }
    if let Some(list) = result.get("routes") {
        array_of_objects(list, "prevResult.routes")?;
    }
    Ok(Some(result.clone()))
}

fn array_of_objects<'a>(value: &'a Value, field: &str) -> Result<Vec<&'a Map<String, Value>>, Error> {
    let Value::Array(items) = value else {
        return Err(Error::invalid(field, value, "must be an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_object()
                .ok_or_else(|| Error::invalid(format!("{field}[{i}]"), item, "must be an object"))
        })
        .collect()
}
