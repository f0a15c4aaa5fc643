//! A serde `Deserializer` over [`yaml::Node`](crate::yaml::Node) trees.
//!
//! Writing this (instead of deserializing with a YAML crate directly) is what
//! lets every error carry the location of the innermost offending node and
//! the dotted path to it (`onboot[1].capabilities[0]`), and lets an unknown
//! field suggest the closest known one.

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use crate::error::{ConfigError, Mark, did_you_mean};
use crate::yaml::{Kind, Node, Resolved, V3, resolve, resolve_bool, resolve_int, resolve_v3};

/// Scalars we read more leniently than the reference does (it decodes with
/// `yaml.v3` and checks a JSON schema): `mode: 0755` unquoted, `readonly:
/// yes`, a quoted number. We accept them; these notes become warnings, so a
/// file can be kept readable by both tools.
pub(crate) type Notes = RefCell<Vec<(Mark, String)>>;

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError::new(msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        match did_you_mean(field, expected.iter().copied()) {
            Some(s) => ConfigError::new(format!("unknown field `{field}`, did you mean `{s}`?")),
            None => ConfigError::new(format!(
                "unknown field `{field}`; known fields are: {}",
                expected.join(", ")
            )),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        match did_you_mean(variant, expected.iter().copied()) {
            Some(s) => ConfigError::new(format!("unknown value `{variant}`, did you mean `{s}`?")),
            None => ConfigError::new(format!(
                "unknown value `{variant}`; expected one of: {}",
                expected.join(", ")
            )),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        ConfigError::new(format!("missing required field `{field}`"))
    }
}

/// Deserializes `T` from `node`; errors carry the innermost node's location
/// and path.
pub(crate) fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, ConfigError> {
    T::deserialize(NodeDe {
        node,
        path: String::new(),
        notes: None,
    })
}

/// Like [`from_node`], noting where a scalar is read more leniently than by
/// the reference.
pub(crate) fn from_node_noting<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    notes: &'de Notes,
) -> Result<T, ConfigError> {
    T::deserialize(NodeDe {
        node,
        path: String::new(),
        notes: Some(notes),
    })
}

/// Every node's location, by path (`services[2].binds[0]`), so that checks run
/// after deserialization can still point at the right line.
pub(crate) fn span_table(node: &Node) -> HashMap<String, Mark> {
    fn walk(n: &Node, path: String, out: &mut HashMap<String, Mark>) {
        match &n.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let p = join(&path, crate::yaml::key_text(k));
                    out.insert(format!("{p}#key"), k.mark);
                    walk(v, p, out);
                }
            }
        }
        out.insert(path, n.mark);
    }
    let mut out = HashMap::new();
    walk(node, String::new(), &mut out);
    out
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    notes: Option<&'a Notes>,
}

impl<'a> NodeDe<'a> {
    fn note(&self, message: String) {
        if let Some(n) = self.notes {
            let at = if self.path.is_empty() {
                message
            } else {
                format!("{}: {message}", self.path)
            };
            n.borrow_mut().push((self.node.mark, at));
        }
    }

    fn scalar_text(&self) -> Option<(&'a str, bool)> {
        match &self.node.kind {
            Kind::Scalar(s) => Some((&s.text, s.plain)),
            _ => None,
        }
    }

    /// Gives an error raised while visiting this node its location, unless a
    /// deeper node already did.
    fn locate<T>(&self, r: Result<T, ConfigError>) -> Result<T, ConfigError> {
        r.map_err(|mut e| {
            if e.mark.is_none() {
                e.mark = Some(self.node.mark);
                if !self.path.is_empty() {
                    e.message = format!("{}: {}", self.path, e.message);
                }
            }
            e
        })
    }

    fn mismatch(&self, expected: &str) -> ConfigError {
        ConfigError::new(format!(
            "expected {expected}, found {}",
            self.node.describe()
        ))
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.kind {
            Kind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    fn int(&self) -> Result<Resolved<'static>, ConfigError> {
        if let Some((t, false)) = self.scalar_text() {
            self.note(format!(
                "the quoted number \"{t}\" is read as a number here, but LinuxKit refuses a quoted number; write it without quotes"
            ));
        }
        match &self.node.kind {
            Kind::Scalar(s) if s.plain => resolve_int(&s.text),
            // go-yaml accepts quoted numbers for integer fields too.
            Kind::Scalar(s) => resolve_int(s.text.trim()),
            _ => None,
        }
        .ok_or_else(|| self.mismatch("an integer"))
    }
}

macro_rules! deserialize_int {
    ($($method:ident => $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
            let r = self.int().and_then(|i| {
                let fits = match i {
                    Resolved::Int(i) => <$ty>::try_from(i).is_ok(),
                    Resolved::UInt(u) => <$ty>::try_from(u).is_ok(),
                    _ => false,
                };
                if !fits {
                    let unbounded = u64::try_from(<$ty>::MAX).map_or(true, |m| m == u64::MAX);
                    let expected = if <$ty>::MIN == 0 && unbounded {
                        "a non-negative integer".to_string()
                    } else {
                        format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX)
                    };
                    return Err(self.mismatch(&expected));
                }
                match i {
                    Resolved::Int(i) => visitor.visit_i64(i),
                    Resolved::UInt(u) => visitor.visit_u64(u),
                    _ => unreachable!("checked above"),
                }
            });
            self.locate(r)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        let r = match &self.node.kind {
            Kind::Scalar(s) => match resolve(s) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(t) => visitor.visit_str(t),
            },
            Kind::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: &self.path,
                notes: self.notes,
            }),
            Kind::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
                path: &self.path,
                notes: self.notes,
            }),
        };
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        if let Kind::Scalar(s) = &self.node.kind
            && resolve_bool(s.text.trim()).is_some()
            && resolve_v3(s) != V3::Bool
        {
            self.note(format!(
                "`{}` is read as a boolean here, but LinuxKit reads it as text and refuses it; write `true` or `false` without quotes",
                s.text
            ));
        }
        let r = match &self.node.kind {
            Kind::Scalar(s) => match resolve_bool(s.text.trim()) {
                Some(b) => visitor.visit_bool(b),
                None => Err(self.mismatch("`true` or `false`")),
            },
            _ => Err(self.mismatch("`true` or `false`")),
        };
        self.locate(r)
    }

    deserialize_int! {
        deserialize_i8 => i8, deserialize_i16 => i16,
        deserialize_i32 => i32, deserialize_i64 => i64,
        deserialize_u8 => u8, deserialize_u16 => u16,
        deserialize_u32 => u32, deserialize_u64 => u64,
        deserialize_i128 => i128, deserialize_u128 => u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        let r = match &self.node.kind {
            Kind::Scalar(s) => match resolve(s) {
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Int(i) => visitor.visit_f64(i as f64),
                Resolved::UInt(u) => visitor.visit_f64(u as f64),
                _ => Err(self.mismatch("a number")),
            },
            _ => Err(self.mismatch("a number")),
        };
        self.locate(r)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    /// Any scalar reads as its source text, as go-yaml v2 does for string
    /// fields: `mode: 0755` is the string `0755`, `tag: 1.10` stays `1.10`.
    /// (The reference's yaml.v3 and schema refuse a non-string scalar here;
    /// we note it, see [`Notes`].)
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        if let Kind::Scalar(s) = &self.node.kind {
            let what = match resolve_v3(s) {
                V3::Str => None,
                V3::Null => Some("nothing (null)"),
                V3::Bool => Some("a boolean"),
                V3::Number => Some("a number"),
            };
            if let Some(what) = what {
                let shown = if s.text.is_empty() {
                    "an empty value"
                } else {
                    &s.text
                };
                self.note(format!(
                    "`{shown}` is read as the text \"{}\" here, but LinuxKit reads it as {what} and refuses it; quote it: \"{}\"",
                    s.text, s.text
                ));
            }
        }
        let r = match self.text() {
            Some(_) if self.node.is_null() => visitor.visit_str(""),
            Some(t) => visitor.visit_str(t),
            None => Err(self.mismatch("a string")),
        };
        self.locate(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        let r = if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(self.mismatch("nothing"))
        };
        self.locate(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        visitor.visit_newtype_struct(self)
    }

    /// A null (`init:` with nothing after it) reads as an empty list, as in Go.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        let empty: &[Node] = &[];
        let r = match &self.node.kind {
            Kind::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: &self.path,
                notes: self.notes,
            }),
            _ if self.node.is_null() => visitor.visit_seq(Seq {
                items: empty.iter(),
                index: 0,
                path: &self.path,
                notes: self.notes,
            }),
            _ => Err(self.mismatch("a list")),
        };
        self.locate(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        let empty: &[(Node, Node)] = &[];
        let r = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
                path: &self.path,
                notes: self.notes,
            }),
            _ if self.node.is_null() => visitor.visit_map(Map {
                entries: empty.iter(),
                value: None,
                path: &self.path,
                notes: self.notes,
            }),
            _ => Err(self.mismatch("a mapping")),
        };
        self.locate(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        if matches!(self.node.kind, Kind::Map(_)) || self.node.is_null() {
            return self.deserialize_map(visitor);
        }
        let some: Vec<String> = fields.iter().take(2).map(|f| format!("`{f}`")).collect();
        let expected = format!("a mapping of fields such as {}", some.join(" and "));
        let r = Err(self.mismatch(&expected));
        self.locate(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConfigError> {
        let r = match self.text() {
            Some(t) => visitor.visit_enum(Unit(t)),
            None => Err(self.mismatch("a single word")),
        };
        self.locate(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConfigError> {
        visitor.visit_unit()
    }
}

struct Seq<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p str,
    notes: Option<&'a Notes>,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = ConfigError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe {
            node,
            path,
            notes: self.notes,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a, 'p> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, String)>,
    path: &'p str,
    notes: Option<&'a Notes>,
}

impl<'de> MapAccess<'de> for Map<'de, '_> {
    type Error = ConfigError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConfigError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((v, join(self.path, crate::yaml::key_text(k))));
        // Key errors (unknown field) are located at the key and named by the
        // path of the mapping that holds it.
        seed.deserialize(NodeDe {
            node: k,
            path: self.path.to_string(),
            notes: None,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConfigError> {
        let (node, path) = self
            .value
            .take()
            .expect("serde asks for a value after its key");
        seed.deserialize(NodeDe {
            node,
            path,
            notes: self.notes,
        })
    }
}

/// A scalar read as an enum's unit variant.
struct Unit<'a>(&'a str);

impl<'de> EnumAccess<'de> for Unit<'de> {
    type Error = ConfigError;
    type Variant = UnitOnly;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, UnitOnly), ConfigError> {
        let d: de::value::StrDeserializer<'_, ConfigError> = self.0.into_deserializer();
        seed.deserialize(d).map(|v| (v, UnitOnly))
    }
}

struct UnitOnly;

impl<'de> de::VariantAccess<'de> for UnitOnly {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, ConfigError> {
        Err(ConfigError::new("expected a single word"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, ConfigError> {
        Err(ConfigError::new("expected a single word"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ConfigError> {
        Err(ConfigError::new("expected a single word"))
    }
}
