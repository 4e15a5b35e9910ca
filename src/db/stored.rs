//! Enums stored as text by their GraphQL name (`SIGN_IN_FAILED`, `NEEDS_REAUTH`): one name per
//! value, the same in the API, in the database and in the logs, so no enum carries a table of
//! its own. [`StoredEnum`] gives every GraphQL enum its stored name and the lookup back;
//! [`Stored`] is the sqlx type that reads and writes one, on SQLite and PostgreSQL alike.

use async_graphql::resolver_utils::EnumType;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

/// An enum kept in a text column under its GraphQL name. Implemented for every GraphQL enum.
pub trait StoredEnum: EnumType + Copy + PartialEq + Send + Sync + 'static {
    /// The stored (GraphQL) name of this value.
    fn stored_name(self) -> &'static str {
        Self::items().iter().find(|i| i.value == self).map(|i| i.name).unwrap_or("UNKNOWN")
    }

    /// The value stored under `name`, if there is one.
    fn from_stored(name: &str) -> Option<Self> {
        Self::items().iter().find(|i| i.name == name).map(|i| i.value)
    }
}

impl<T: EnumType + Copy + PartialEq + Send + Sync + 'static> StoredEnum for T {}

/// A column holding a [`StoredEnum`]: `#[sqlx(...)]`-free row fields and binds. A name the
/// enum does not know fails to decode (a CHECK constraint or a newer release wrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored<T>(pub T);

impl<DB: sqlx::Database, T: StoredEnum> sqlx::Type<DB> for Stored<T>
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database, T: StoredEnum> sqlx::Decode<'r, DB> for Stored<T>
where
    &'r str: sqlx::Decode<'r, DB>,
{
    fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let name = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
        T::from_stored(name).map(Stored).ok_or_else(|| format!("{name:?} is no {}", std::any::type_name::<T>()).into())
    }
}

impl<'q, DB: sqlx::Database, T: StoredEnum> sqlx::Encode<'q, DB> for Stored<T>
where
    &'static str: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as sqlx::Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&'static str as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0.stored_name(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::model::Role;

    #[tokio::test]
    async fn an_enum_is_written_by_its_graphql_name_and_an_unknown_name_does_not_read() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let written: String = sqlx::query_scalar("SELECT $1").bind(Stored(Role::Admin)).fetch_one(&pool).await.unwrap();
        assert_eq!(written, "ADMIN");
        let read: Stored<Role> = sqlx::query_scalar("SELECT 'OWNER'").fetch_one(&pool).await.unwrap();
        assert_eq!(read.0, Role::Owner);
        let unknown = sqlx::query_scalar::<_, Stored<Role>>("SELECT 'KING'").fetch_one(&pool).await;
        assert!(unknown.is_err(), "an unknown name read as {unknown:?}");
    }
}
