//! One convention for every mutation: its arguments come in one `input:` object (a mutation
//! that needs none takes no argument), and it answers with what it changed.
//!
//! Mutations that took flat arguments before still accept them for one release: the flat
//! arguments are optional and deprecated beside `input`, and [`input_or_flat!`] takes
//! whichever form the caller used. Giving both, or neither, is refused on `input`.

use crate::error::{Error, Reason};

/// Both `input` and a deprecated flat argument were given.
pub fn both_given() -> Error {
    Error::invalid("input", "give `input` or the deprecated arguments, not both")
}

/// Neither `input` nor every required flat argument was given.
pub fn missing() -> Error {
    Error::because("input", Reason::Required)
}

/// The id of an update whose `id` moved into its input: the one inside `input`, or the
/// deprecated one beside it, never both; without either, `id` is REQUIRED.
pub fn id_in_or_beside(beside: Option<async_graphql::ID>, inside: Option<async_graphql::ID>) -> Result<async_graphql::ID, Error> {
    match (beside, inside) {
        (Some(_), Some(_)) => Err(both_given()),
        (Some(id), None) | (None, Some(id)) => Ok(id),
        (None, None) => Err(Error::because("id", Reason::Required)),
    }
}

/// The mutation's input: `$input` when given, else the value `$build` makes of the deprecated
/// flat arguments (every `required` one must be there; `optional` ones may be missing).
macro_rules! input_or_flat {
    ($input:expr, [$($required:ident),*] $(, [$($optional:ident),*])? => $build:expr) => {{
        let flat_given = false $(|| $required.is_some())* $($(|| $optional.is_some())*)?;
        match $input {
            Some(_) if flat_given => return Err($crate::input::both_given()),
            Some(input) => input,
            None => {
                $(let Some($required) = $required else { return Err($crate::input::missing()) };)*
                $build
            }
        }
    }};
}
pub(crate) use input_or_flat;
