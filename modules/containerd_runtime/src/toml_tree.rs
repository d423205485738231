//! Small helpers over `toml_edit` for surgical edits: walk or create a table path, read a document as plain
//! data (to compare what containerd would load, ignoring formatting), make one table equal to another while
//! keeping the formatting of what did not change, and prune tables left empty.

use anyhow::{bail, Result};
use serde_json::{Map, Value as Json};
use toml_edit::{InlineTable, Item, Table, Value};

/// The item at `path` under `item`, if every step is a table (the one walk, shared with gpu_validate).
pub use node_facts::containerd::layout::get;

/// The table-like item at `path`, created (as implicit tables, which print no header of their own) where
/// missing. Fails when a step exists but is not a table, naming the dotted path.
pub fn ensure_table<'a>(item: &'a mut Item, path: &[&str]) -> Result<&'a mut Item> {
    let mut cur = item;
    for (i, key) in path.iter().enumerate() {
        let inline_parent = cur.is_inline_table();
        let Some(t) = cur.as_table_like_mut() else {
            bail!("{} is not a table", path[..i].join("."));
        };
        if !t.contains_key(key) {
            let fresh = if inline_parent {
                Item::Value(Value::InlineTable(InlineTable::new()))
            } else {
                let mut table = Table::new();
                table.set_implicit(true);
                Item::Table(table)
            };
            t.insert(key, fresh);
        }
        cur = t.get_mut(key).expect("just inserted");
        if !cur.is_table_like() {
            bail!(
                "invalid config: {} must be a table, found {}",
                path[..=i].join("."),
                cur.type_name()
            );
        }
    }
    Ok(cur)
}

/// The plain data of an item: what a TOML parser (and containerd) sees, with no formatting.
pub fn data(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(v) => value_data(v),
        Item::Table(t) => table_data(t.iter()),
        Item::ArrayOfTables(a) => Json::Array(a.iter().map(|t| table_data(t.iter())).collect()),
    }
}

fn table_data<'a>(items: impl Iterator<Item = (&'a str, &'a Item)>) -> Json {
    let mut m = Map::new();
    for (k, v) in items {
        m.insert(k.to_string(), data(v));
    }
    Json::Object(m)
}

fn value_data(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(i) => Json::from(*i.value()),
        Value::Float(f) => serde_json::Number::from_f64(*f.value())
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(f.value().to_string())),
        Value::Boolean(b) => Json::Bool(*b.value()),
        // A date is not a string in TOML; tag it so the two never compare equal.
        Value::Datetime(d) => Json::String(format!("datetime:{}", d.value())),
        Value::Array(a) => Json::Array(a.iter().map(value_data).collect()),
        Value::InlineTable(t) => {
            let mut m = Map::new();
            for (k, v) in t.iter() {
                m.insert(k.to_string(), value_data(v));
            }
            Json::Object(m)
        }
    }
}

/// Clears every table's document position under `item`, so a copied table prints where it is inserted
/// (right after its preceding sibling) instead of where the original was.
pub fn clear_positions(item: &mut Item) {
    if let Item::Table(t) = item {
        t.set_position(None);
        for (_, child) in t.iter_mut() {
            clear_positions(child);
        }
    }
}

/// Drops the indentation and comments a table brought from another document (headers and keys start at
/// column 0, as in a new file).
pub fn reset_indentation(item: &mut Item) {
    if let Item::Table(t) = item {
        t.decor_mut().set_prefix("\n");
        t.decor_mut().set_suffix("");
        for (mut key, child) in t.iter_mut() {
            key.leaf_decor_mut().set_prefix("");
            reset_indentation(child);
        }
    }
}

/// The indentation (spaces and tabs after the last newline) of a decor prefix.
pub fn indentation(prefix: Option<&str>) -> String {
    let p = prefix.unwrap_or("");
    let last = p.rsplit('\n').next().unwrap_or("");
    last.chars().filter(|c| *c == ' ' || *c == '\t').collect()
}

/// The indentation the key-values of a table use (taken from its first key-value), if any.
fn key_indentation(t: &dyn toml_edit::TableLike) -> Option<String> {
    t.iter()
        .find(|(_, v)| v.is_value())
        .and_then(|(k, _)| t.key(k))
        .map(|k| indentation(k.leaf_decor().prefix().and_then(|p| p.as_str())))
}

/// Sets `key = value` in a table-like item. An existing value keeps its decor (spacing, trailing comment);
/// a new key takes the indentation its sibling keys use. No-op when the data is already equal.
pub fn set_value(table: &mut Item, key: &str, value: Value) -> Result<()> {
    let Some(t) = table.as_table_like_mut() else {
        bail!("cannot set {}: the parent is not a table", key);
    };
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            if value_data(old) != value_data(&value) {
                let decor = old.decor().clone();
                *old = value;
                *old.decor_mut() = decor;
            }
        }
        Some(other) => {
            *other = Item::Value(value);
        }
        None => {
            let indent = key_indentation(t);
            t.insert(key, Item::Value(value));
            if let (Some(indent), Some(mut k)) = (indent, t.key_mut(key)) {
                if !indent.is_empty() {
                    k.leaf_decor_mut().set_prefix(indent);
                }
            }
        }
    }
    Ok(())
}

/// Makes `target` hold the same data as `desired`, touching only what differs: equal keys keep their bytes,
/// differing values are replaced (keeping their decor), extra keys are removed, missing ones are added.
pub fn sync(target: &mut Item, desired: &Item) {
    if data(target) == data(desired) {
        return;
    }
    let (Some(t), Some(d)) = (target.as_table_like_mut(), desired.as_table_like()) else {
        let mut fresh = desired.clone();
        clear_positions(&mut fresh);
        *target = fresh;
        return;
    };
    let extra: Vec<String> = t
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !d.contains_key(k))
        .collect();
    for k in extra {
        t.remove(&k);
    }
    for (k, dv) in d.iter() {
        match t.get_mut(k) {
            Some(tv) if tv.is_table_like() && dv.is_table_like() => sync(tv, dv),
            Some(Item::Value(tv)) if dv.is_value() => {
                let new = dv.as_value().expect("is a value").clone();
                if value_data(tv) != value_data(&new) {
                    let decor = tv.decor().clone();
                    *tv = new;
                    *tv.decor_mut() = decor;
                }
            }
            Some(tv) => {
                let mut fresh = dv.clone();
                clear_positions(&mut fresh);
                *tv = fresh;
            }
            None => {
                let indent = key_indentation(t);
                let mut fresh = dv.clone();
                clear_positions(&mut fresh);
                let is_value = fresh.is_value();
                t.insert(k, fresh);
                if is_value {
                    if let (Some(indent), Some(mut key)) = (indent, t.key_mut(k)) {
                        key.leaf_decor_mut().set_prefix(indent);
                    }
                }
            }
        }
    }
}

/// Removes `path`'s last key and then every table on the way up that is left with nothing in it.
/// Returns whether the key was there.
pub fn remove_and_prune(root: &mut Item, path: &[&str]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let removed = match get_mut(root, parents).and_then(Item::as_table_like_mut) {
        Some(t) => t.remove(last).is_some(),
        None => false,
    };
    if removed {
        prune(root, parents);
    }
    removed
}

/// Removes the tables along `path` (deepest first) that are empty.
pub fn prune(root: &mut Item, path: &[&str]) {
    for depth in (1..=path.len()).rev() {
        let (parent, key) = (&path[..depth - 1], path[depth - 1]);
        let empty = get(root, &path[..depth])
            .and_then(Item::as_table_like)
            .map(|t| t.is_empty())
            .unwrap_or(false);
        if !empty {
            return;
        }
        if let Some(t) = get_mut(root, parent).and_then(Item::as_table_like_mut) {
            t.remove(key);
        }
    }
}

/// Mutable access to the item at `path`.
pub fn get_mut<'a>(item: &'a mut Item, path: &[&str]) -> Option<&'a mut Item> {
    let mut cur = item;
    for key in path {
        cur = cur.as_table_like_mut()?.get_mut(key)?;
    }
    Some(cur)
}

/// Whether most strings the document already holds are written as literal strings (`'...'`), as
/// containerd 2.x's `config default` and nodeadm's version 3 configs write them.
pub fn prefers_literal_strings(item: &Item) -> bool {
    fn count(v: &Value, n: &mut (usize, usize)) {
        match v {
            Value::String(s) => match s.as_repr().and_then(|r| r.as_raw().as_str()) {
                Some(raw) if raw.starts_with('\'') => n.0 += 1,
                Some(_) => n.1 += 1,
                None => {}
            },
            Value::Array(a) => a.iter().for_each(|v| count(v, n)),
            Value::InlineTable(t) => t.iter().for_each(|(_, v)| count(v, n)),
            _ => {}
        }
    }
    fn walk(item: &Item, n: &mut (usize, usize)) {
        match item {
            Item::Value(v) => count(v, n),
            Item::Table(t) => t.iter().for_each(|(_, i)| walk(i, n)),
            Item::ArrayOfTables(a) => a
                .iter()
                .for_each(|t| t.iter().for_each(|(_, i)| walk(i, n))),
            Item::None => {}
        }
    }
    let mut n = (0, 0);
    walk(item, &mut n);
    n.0 > n.1
}

/// Writes every string this run added (it has no source text yet) as a literal string (`'...'`) where
/// that can hold it, so new values match a file written in that style. Existing strings keep their bytes.
pub fn quote_new_strings_literally(item: &mut Item) {
    fn fix(v: &mut Value) {
        match v {
            Value::String(s) if s.as_repr().is_none() => {
                let text = s.value();
                if text.contains(['\'', '\n', '\r']) || text.chars().any(char::is_control) {
                    return;
                }
                if let Ok(mut literal) = format!("'{}'", text).parse::<Value>() {
                    let decor = s.decor().clone();
                    *literal.decor_mut() = decor;
                    *v = literal;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(fix),
            Value::InlineTable(t) => t.iter_mut().for_each(|(_, v)| fix(v)),
            _ => {}
        }
    }
    match item {
        Item::Value(v) => fix(v),
        Item::Table(t) => t
            .iter_mut()
            .for_each(|(_, i)| quote_new_strings_literally(i)),
        Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| {
            t.iter_mut()
                .for_each(|(_, i)| quote_new_strings_literally(i))
        }),
        Item::None => {}
    }
}
