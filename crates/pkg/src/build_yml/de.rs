//! The deserialization helper the entry types share.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// Deserializes a `T` from a mapping and checks it inside the mapping's
/// visitor, so that the check's error is located at the mapping
/// (`build.yml:LINE:COLUMN: files[1]: ...`).
pub(super) fn checked_map<'de, D, T, U>(
    d: D,
    check: fn(T) -> Result<U, String>,
) -> Result<U, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T, U>(fn(T) -> Result<U, String>, PhantomData<fn() -> T>);
    impl<'de, T: Deserialize<'de>, U> Visitor<'de> for V<T, U> {
        type Value = U;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<U, A::Error> {
            let t = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.0)(t).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(check, PhantomData))
}
