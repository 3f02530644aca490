//! Avro schemas of any shape, as an object container file declares them, for handing on the
//! file's records without knowing their type in advance (the spooldir source's `AVRO`
//! deserializer): the schema JSON parsed into a tree ([`Schema::parse`]), its Parsing Canonical
//! Form and CRC-64-AVRO fingerprint (Avro 1.x specification, "Parsing Canonical Form for
//! Schemas" and "Schema Fingerprints"), and a walk over one binary datum
//! ([`Schema::copy_datum`]) that finds where it ends and writes it out again as Avro Java's
//! `GenericDatumWriter` writes a record that its `GenericDatumReader` read: the same bytes,
//! except that numbers get their shortest encoding and an array or map comes as one block of
//! all its items (a writer may split them into blocks, with or without byte sizes).
//!
//! Written here rather than taken from the `apache-avro` crate, which would bring a serde-based
//! value model and its dependencies for what is a walk over the binary encoding with the
//! primitives of `flume_event_format`. The walk never panics on bad input: each value is read
//! through that module's bounds-checked [`Cursor`], nesting is capped at [`MAX_DEPTH`] (a
//! recursive schema could otherwise nest as deep as the data says and exhaust the stack), and
//! the items of an array or map whose type can take no bytes at all (`null`, an empty record)
//! are capped at [`MAX_ZERO_WIDTH_ITEMS`], since a count alone could otherwise keep it busy
//! for ever. Everything else it writes is no longer than what it read, plus a few bytes.

use serde_json::{Map, Value};

use crate::flume_event_format::{Cursor, put_bytes, put_long};

/// How deep a datum's records, arrays, maps and unions may nest.
pub const MAX_DEPTH: u32 = 256;

/// The most items an array or map of a type that can take no bytes may hold.
pub const MAX_ZERO_WIDTH_ITEMS: u64 = 1 << 16;

/// A parsed schema: its root type, and its named types (records, enums, fixed) in the order
/// they are defined, which references point into.
#[derive(Debug)]
pub struct Schema {
    root: Node,
    named: Vec<Named>,
}

#[derive(Debug)]
struct Named {
    fullname: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Being parsed: its fields may refer to it.
    Pending,
    Record(Vec<(String, Node)>),
    Enum(Vec<String>),
    Fixed(usize),
}

#[derive(Clone, Debug)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Named(usize),
    Array(Box<Node>),
    Map(Box<Node>),
    Union(Vec<Node>),
}

fn primitive(name: &str) -> Option<Node> {
    Some(match name {
        "null" => Node::Null,
        "boolean" => Node::Boolean,
        "int" => Node::Int,
        "long" => Node::Long,
        "float" => Node::Float,
        "double" => Node::Double,
        "bytes" => Node::Bytes,
        "string" => Node::String,
        _ => return None,
    })
}

impl Schema {
    /// Parses a schema's JSON text; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("the schema is not JSON: {e}"))?;
        let mut named = Vec::new();
        let root = parse_node(&json, "", &mut named)?;
        Ok(Schema { root, named })
    }

    /// The Parsing Canonical Form: the schema with only what matters to the binary encoding,
    /// full names, no white space, attributes in the specification's order.
    pub fn canonical_form(&self) -> String {
        let mut out = String::new();
        let mut seen = vec![false; self.named.len()];
        self.write_canonical(&self.root, &mut seen, &mut out);
        out
    }

    /// The CRC-64-AVRO fingerprint of the canonical form, least significant byte first (as Avro
    /// Java's `SchemaNormalization.parsingFingerprint("CRC-64-AVRO", ...)` returns it).
    pub fn fingerprint(&self) -> [u8; 8] {
        crc64_avro(self.canonical_form().as_bytes()).to_le_bytes()
    }

    /// Whether a datum of this schema can take no bytes at all.
    pub fn zero_width(&self) -> bool {
        self.min_size(&self.root, &mut vec![false; self.named.len()]) == 0
    }

    /// Reads one datum from `c` and appends it to `out`, re-encoded (see the module doc).
    pub fn copy_datum(&self, c: &mut Cursor, out: &mut Vec<u8>) -> Result<(), String> {
        self.copy(&self.root, c, out, 0)
    }

    fn write_canonical(&self, node: &Node, seen: &mut [bool], out: &mut String) {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match node {
            Node::Null => out.push_str("\"null\""),
            Node::Boolean => out.push_str("\"boolean\""),
            Node::Int => out.push_str("\"int\""),
            Node::Long => out.push_str("\"long\""),
            Node::Float => out.push_str("\"float\""),
            Node::Double => out.push_str("\"double\""),
            Node::Bytes => out.push_str("\"bytes\""),
            Node::String => out.push_str("\"string\""),
            Node::Array(items) => {
                out.push_str("{\"type\":\"array\",\"items\":");
                self.write_canonical(items, seen, out);
                out.push('}');
            }
            Node::Map(values) => {
                out.push_str("{\"type\":\"map\",\"values\":");
                self.write_canonical(values, seen, out);
                out.push('}');
            }
            Node::Union(branches) => {
                out.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_canonical(b, seen, out);
                }
                out.push(']');
            }
            Node::Named(i) => {
                let named = &self.named[*i];
                // A named type is written out where it first appears, then by name.
                if seen[*i] {
                    out.push_str(&quoted(&named.fullname));
                    return;
                }
                seen[*i] = true;
                out.push_str("{\"name\":");
                out.push_str(&quoted(&named.fullname));
                match &named.kind {
                    Kind::Record(fields) => {
                        out.push_str(",\"type\":\"record\",\"fields\":[");
                        for (k, (name, ty)) in fields.iter().enumerate() {
                            if k > 0 {
                                out.push(',');
                            }
                            out.push_str("{\"name\":");
                            out.push_str(&quoted(name));
                            out.push_str(",\"type\":");
                            self.write_canonical(ty, seen, out);
                            out.push('}');
                        }
                        out.push(']');
                    }
                    Kind::Enum(symbols) => {
                        out.push_str(",\"type\":\"enum\",\"symbols\":[");
                        let symbols: Vec<String> = symbols.iter().map(|s| quoted(s)).collect();
                        out.push_str(&symbols.join(","));
                        out.push(']');
                    }
                    Kind::Fixed(size) => {
                        out.push_str(&format!(",\"type\":\"fixed\",\"size\":{size}"));
                    }
                    Kind::Pending => {}
                }
                out.push('}');
            }
        }
    }

    /// The fewest bytes a datum of `node` takes. A record met again inside itself counts as
    /// nothing (it can only recur through a union, array or map, which take a byte).
    fn min_size(&self, node: &Node, open: &mut [bool]) -> usize {
        match node {
            Node::Null => 0,
            Node::Float => 4,
            Node::Double => 8,
            Node::Boolean
            | Node::Int
            | Node::Long
            | Node::Bytes
            | Node::String
            | Node::Array(_)
            | Node::Map(_)
            | Node::Union(_) => 1,
            Node::Named(i) => match &self.named[*i].kind {
                Kind::Enum(_) => 1,
                Kind::Fixed(size) => *size,
                Kind::Pending => 0,
                Kind::Record(fields) => {
                    if open[*i] {
                        return 0;
                    }
                    open[*i] = true;
                    let size = fields
                        .iter()
                        .map(|(_, f)| self.min_size(f, open))
                        .fold(0usize, usize::saturating_add);
                    open[*i] = false;
                    size
                }
            },
        }
    }

    fn copy(
        &self,
        node: &Node,
        c: &mut Cursor,
        out: &mut Vec<u8>,
        depth: u32,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "values nested more than {MAX_DEPTH} deep at byte {}",
                c.position()
            ));
        }
        match node {
            Node::Null => {}
            Node::Boolean => out.push(u8::from(c.boolean()?)),
            Node::Int => {
                let at = c.position();
                let n = c.long()?;
                if i32::try_from(n).is_err() {
                    return Err(format!("int at byte {at} is {n}, out of range"));
                }
                put_long(out, n);
            }
            Node::Long => put_long(out, c.long()?),
            Node::Float => out.extend_from_slice(c.fixed(4)?),
            Node::Double => out.extend_from_slice(c.fixed(8)?),
            // A string is handed on as bytes, unchecked, as Avro Java's reader and writer do.
            Node::Bytes | Node::String => put_bytes(out, c.bytes()?),
            Node::Union(branches) => {
                let i = c.index(branches.len(), "union branch")?;
                put_long(out, i as i64);
                self.copy(&branches[i], c, out, depth + 1)?;
            }
            Node::Array(items) => {
                let zero = self.min_size(items, &mut vec![false; self.named.len()]) == 0;
                self.copy_blocks(c, out, zero, |c, out| self.copy(items, c, out, depth + 1))?;
            }
            Node::Map(values) => {
                let zero = self.min_size(values, &mut vec![false; self.named.len()]) == 0;
                self.copy_blocks(c, out, zero, |c, out| {
                    put_bytes(out, c.bytes()?);
                    self.copy(values, c, out, depth + 1)
                })?;
            }
            Node::Named(i) => match &self.named[*i].kind {
                Kind::Record(fields) => {
                    for (_, f) in fields {
                        self.copy(f, c, out, depth + 1)?;
                    }
                }
                Kind::Enum(symbols) => {
                    let i = c.index(symbols.len(), "enum symbol")?;
                    put_long(out, i as i64);
                }
                Kind::Fixed(size) => out.extend_from_slice(c.fixed(*size)?),
                Kind::Pending => return Err("a type used before it is defined".into()),
            },
        }
        Ok(())
    }

    /// The blocks of an array or map, written out again as one block of all the items.
    fn copy_blocks(
        &self,
        c: &mut Cursor,
        out: &mut Vec<u8>,
        zero_width: bool,
        mut item: impl FnMut(&mut Cursor, &mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut items = Vec::new();
        let mut total: u64 = 0;
        loop {
            let at = c.position();
            let count = c.long()?;
            if count == 0 {
                break;
            }
            if count < 0 {
                // The block's size in bytes follows; the items are read one by one anyway.
                c.long()?;
            }
            let count = count.unsigned_abs();
            total = total.saturating_add(count);
            if zero_width && total > MAX_ZERO_WIDTH_ITEMS {
                return Err(format!(
                    "more than {MAX_ZERO_WIDTH_ITEMS} items that take no bytes, at byte {at}"
                ));
            }
            // Every other item takes at least a byte: a false count runs out of input.
            for _ in 0..count {
                item(c, &mut items)?;
            }
        }
        if total > 0 {
            put_long(out, total as i64);
            out.extend_from_slice(&items);
        }
        put_long(out, 0);
        Ok(())
    }
}

fn parse_node(json: &Value, namespace: &str, named: &mut Vec<Named>) -> Result<Node, String> {
    match json {
        Value::String(name) => by_name(name, namespace, named),
        Value::Array(branches) => Ok(Node::Union(
            branches
                .iter()
                .map(|b| parse_node(b, namespace, named))
                .collect::<Result<_, _>>()?,
        )),
        Value::Object(o) => {
            let ty = o
                .get("type")
                .ok_or_else(|| format!("a schema without \"type\": {json}"))?;
            let Value::String(ty) = ty else {
                return parse_node(ty, namespace, named);
            };
            match ty.as_str() {
                "record" | "error" => {
                    let (fullname, inner) = name_of(o, namespace)?;
                    let i = declare(fullname, named)?;
                    let fields = o.get("fields").and_then(Value::as_array).ok_or_else(|| {
                        format!("record {} has no \"fields\" array", named[i].fullname)
                    })?;
                    let mut parsed = Vec::with_capacity(fields.len());
                    for f in fields {
                        let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                            format!("a field of record {} has no name", named[i].fullname)
                        })?;
                        let ty = f.get("type").ok_or_else(|| {
                            format!("field {name} of record {} has no type", named[i].fullname)
                        })?;
                        parsed.push((name.to_owned(), parse_node(ty, &inner, named)?));
                    }
                    named[i].kind = Kind::Record(parsed);
                    Ok(Node::Named(i))
                }
                "enum" => {
                    let (fullname, _) = name_of(o, namespace)?;
                    let symbols = o
                        .get("symbols")
                        .and_then(Value::as_array)
                        .and_then(|s| {
                            s.iter()
                                .map(|v| v.as_str().map(str::to_owned))
                                .collect::<Option<Vec<_>>>()
                        })
                        .ok_or_else(|| {
                            format!("enum {fullname} has no \"symbols\" array of strings")
                        })?;
                    let i = declare(fullname, named)?;
                    named[i].kind = Kind::Enum(symbols);
                    Ok(Node::Named(i))
                }
                "fixed" => {
                    let (fullname, _) = name_of(o, namespace)?;
                    let size = o
                        .get("size")
                        .and_then(Value::as_u64)
                        .and_then(|s| usize::try_from(s).ok())
                        .ok_or_else(|| format!("fixed {fullname} has no whole-number \"size\""))?;
                    let i = declare(fullname, named)?;
                    named[i].kind = Kind::Fixed(size);
                    Ok(Node::Named(i))
                }
                "array" => {
                    let items = o.get("items").ok_or("an array schema without \"items\"")?;
                    Ok(Node::Array(Box::new(parse_node(items, namespace, named)?)))
                }
                "map" => {
                    let values = o.get("values").ok_or("a map schema without \"values\"")?;
                    Ok(Node::Map(Box::new(parse_node(values, namespace, named)?)))
                }
                // {"type": "int"}, with a logicalType or not, or a reference to a named type.
                other => by_name(other, namespace, named),
            }
        }
        other => Err(format!("{other} is not a schema")),
    }
}

/// A primitive type, or a named type defined earlier (by its full name, or its short name in
/// the enclosing namespace or in none).
fn by_name(name: &str, namespace: &str, named: &[Named]) -> Result<Node, String> {
    if let Some(p) = primitive(name) {
        return Ok(p);
    }
    let qualified =
        (!name.contains('.') && !namespace.is_empty()).then(|| format!("{namespace}.{name}"));
    qualified
        .iter()
        .map(String::as_str)
        .chain([name])
        .find_map(|full| named.iter().position(|n| n.fullname == full))
        .map(Node::Named)
        .ok_or_else(|| format!("unknown type {name:?}"))
}

/// A named type's full name, and the namespace of the types inside it.
fn name_of(o: &Map<String, Value>, namespace: &str) -> Result<(String, String), String> {
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a record, enum or fixed without a name")?;
    if let Some((ns, _)) = name.rsplit_once('.') {
        return Ok((name.to_owned(), ns.to_owned()));
    }
    let ns = match o.get("namespace") {
        Some(Value::String(ns)) => ns.as_str(),
        _ => namespace,
    };
    let full = if ns.is_empty() {
        name.to_owned()
    } else {
        format!("{ns}.{name}")
    };
    Ok((full, ns.to_owned()))
}

fn declare(fullname: String, named: &mut Vec<Named>) -> Result<usize, String> {
    if named.iter().any(|n| n.fullname == fullname) {
        return Err(format!("type {fullname} is defined twice"));
    }
    named.push(Named {
        fullname,
        kind: Kind::Pending,
    });
    Ok(named.len() - 1)
}

/// The Rabin fingerprint the Avro specification calls CRC-64-AVRO.
fn crc64_avro(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    const TABLE: [u64; 256] = {
        let mut table = [0u64; 256];
        let mut i = 0;
        while i < 256 {
            let mut fp = i as u64;
            let mut j = 0;
            while j < 8 {
                fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
                j += 1;
            }
            table[i] = fp;
            i += 1;
        }
        table
    };
    let mut fp = EMPTY;
    for &b in data {
        fp = (fp >> 8) ^ TABLE[((fp ^ u64::from(b)) & 0xff) as usize];
    }
    fp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: [u8; 8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Fingerprints as the Python `avro` package 1.12.1 computes them (`.fingerprint().hex()`
    /// of the parsed schema, and its `_crc_64_fingerprint` of the canonical form below, which
    /// follows the specification: Python's own `canonical_form` keeps a logicalType's object
    /// form and writes a named type out again where it is referred to by full name, where Avro
    /// Java and the specification do not).
    #[test]
    fn canonical_form_and_fingerprint_match_avros() {
        let int = Schema::parse(r#"{"type": "int", "logicalType": "date"}"#).unwrap();
        assert_eq!(int.canonical_form(), r#""int""#);
        assert_eq!(hex(int.fingerprint()), "8f5c393f1ad57572");
        assert_eq!(
            hex(Schema::parse(r#""null""#).unwrap().fingerprint()),
            "8a8f25cce724dd63"
        );
        let text = r#"{"type":"record","name":"R","namespace":"x.y","doc":"d","fields":[
            {"name":"a","type":{"type":"long"},"default":1},
            {"name":"b","type":["null","R",{"type":"enum","name":"E","symbols":["A","B"]}]},
            {"name":"f","type":{"type":"fixed","name":"F","namespace":"z","size":16}},
            {"name":"g","type":{"type":"map","values":{"type":"array","items":"z.F"}}},
            {"name":"h","type":"E"}]}"#;
        let s = Schema::parse(text).unwrap();
        assert_eq!(
            s.canonical_form(),
            concat!(
                r#"{"name":"x.y.R","type":"record","fields":[{"name":"a","type":"long"},"#,
                r#"{"name":"b","type":["null","x.y.R",{"name":"x.y.E","type":"enum","symbols":["A","B"]}]},"#,
                r#"{"name":"f","type":{"name":"z.F","type":"fixed","size":16}},"#,
                r#"{"name":"g","type":{"type":"map","values":{"type":"array","items":"z.F"}}},"#,
                r#"{"name":"h","type":"x.y.E"}]}"#
            )
        );
        assert_eq!(hex(s.fingerprint()), FINGERPRINT_R);
    }

    const FINGERPRINT_R: &str = "0d6a43de0e114b02";

    #[test]
    fn bad_schemas_say_why() {
        for (text, why) in [
            ("{", "not JSON"),
            (r#"{"name":"x"}"#, "without \"type\""),
            (r#""Nope""#, "unknown type \"Nope\""),
            (r#"{"type":"record","name":"R"}"#, "no \"fields\""),
            (
                r#"{"type":"enum","name":"E","symbols":[1]}"#,
                "array of strings",
            ),
            (r#"{"type":"fixed","name":"F","size":-1}"#, "whole-number"),
            (
                r#"["int",{"type":"fixed","name":"F","size":1},{"type":"fixed","name":"F","size":2}]"#,
                "defined twice",
            ),
            ("3", "is not a schema"),
        ] {
            let err = Schema::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    fn copy(s: &Schema, datum: &[u8]) -> Result<Vec<u8>, String> {
        let mut c = Cursor::new(datum);
        let mut out = Vec::new();
        s.copy_datum(&mut c, &mut out)?;
        c.expect_end("the datum")?;
        Ok(out)
    }

    #[test]
    fn datums_are_copied_and_blocks_joined() {
        let s = Schema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"i","type":"int"},{"name":"s","type":"string"},
                {"name":"u","type":["null","double"]},{"name":"a","type":{"type":"array","items":"long"}},
                {"name":"m","type":{"type":"map","values":"boolean"}},{"name":"x","type":{"type":"fixed","name":"X","size":2}},
                {"name":"f","type":"float"}]}"#,
        )
        .unwrap();
        let datum = [
            0x54, // i = 42
            0x04, b'h', b'i', // s
            0x02, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // u = branch 1, 1.0
            0x04, 0x02, 0x04, 0x00, // a = [1, 2]
            0x02, 0x02, b'k', 0x01, 0x00, // m = {k: true}
            0xaa, 0xbb, // x
            0, 0, 0x80, 0x3f, // f = 1.0
        ];
        assert_eq!(copy(&s, &datum).unwrap(), datum);
        // The same array as two blocks, the second with its byte size (negative count), and
        // an over-long encoding of 42: one block and the shortest encoding come out.
        let mut split = vec![0xd4, 0x00, 0x04, b'h', b'i', 0x00];
        split.extend_from_slice(&[0x02, 0x02, 0x01, 0x02, 0x04, 0x00]);
        split.extend_from_slice(&[0x00, 0xaa, 0xbb, 0, 0, 0, 0]);
        let want = [
            &[0x54, 0x04, b'h', b'i', 0x00, 0x04, 0x02, 0x04, 0x00][..],
            &[0x00, 0xaa, 0xbb, 0, 0, 0, 0][..],
        ]
        .concat();
        assert_eq!(copy(&s, &split).unwrap(), want);
        // Bad data: truncated, a bad union branch, an int out of range, a bad boolean.
        for (bad, why) in [
            (&datum[..10], "runs past"),
            (&[0x54, 0x00, 0x06][..], "union branch at byte 2 is 3"),
            (&[0xfe, 0xff, 0xff, 0xff, 0x1f][..], "out of range"),
        ] {
            let err = copy(&s, bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn deep_nesting_and_endless_zero_width_arrays_are_refused() {
        let list = Schema::parse(
            r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#,
        )
        .unwrap();
        assert!(!list.zero_width());
        assert_eq!(
            copy(&list, &[0x02, 0x02, 0x00]).unwrap(),
            [0x02, 0x02, 0x00]
        );
        let deep = vec![0x02; 10_000];
        let err = copy(&list, &deep).unwrap_err();
        assert!(err.contains("nested more than 256 deep"), "{err}");
        let nulls = Schema::parse(r#"{"type":"array","items":"null"}"#).unwrap();
        assert_eq!(copy(&nulls, &[0x06, 0x00]).unwrap(), [0x06, 0x00]);
        // A count near 2^62 of items that take no bytes.
        let err = copy(
            &nulls,
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00],
        )
        .unwrap_err();
        assert!(err.contains("items that take no bytes"), "{err}");
        assert!(Schema::parse(r#""null""#).unwrap().zero_width());
    }
}
