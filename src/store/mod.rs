//! The database: Postgres or the embedded SQLite default, one schema, one migration set each.
//! Queries are checked at run time and tested on both backends; SQL is never built from input.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Runs the same statement on whichever pool `db` holds. Statements use `$1`-style
/// parameters, which SQLite reads as numbered parameters too, so one text serves both.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Postgres($pool) => $body,
            $crate::store::Db::Sqlite($pool) => $body,
        }
    };
}

#[macro_use]
mod keys;
mod limits;
mod responses;
mod teams;
mod usage;

pub use keys::{KeyRecord, NewKey};
pub use responses::{ResponseOwner, OWNER_TTL_DAYS};
pub use teams::{KeyChange, TeamRecord};
pub use usage::{parse_day, UnknownUsageGroup, UsageGroup, UsageSummary};

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Db {
    /// Connects lazily-checked pools; a SQLite file is created when missing, readable by its
    /// owner only (it holds key hashes and, with `store_content`, prompt text).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            if !(url.contains(":memory:") || url.contains("mode=memory") || url.contains("mode=ro"))
            {
                create_private_file(options.get_filename())?;
            }
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(options)
                .await?;
            Ok(Self::Postgres(pool))
        }
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Self::Postgres(pool) => PG_MIGRATOR.run(pool).await,
            Self::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await,
        }
    }

    /// This database's identity (`gateway_identity`, made on first call after the
    /// migrations): what binds a usage journal to the database its rows belong to.
    pub async fn database_id(&self) -> Result<String, sqlx::Error> {
        const MAKE: &str = "INSERT INTO gateway_identity (id, database_id) VALUES (1, $1) \
                            ON CONFLICT (id) DO NOTHING";
        const READ: &str = "SELECT database_id FROM gateway_identity WHERE id = 1";
        let fresh = uuid::Uuid::new_v4().to_string();
        on_pool!(self, |pool| {
            sqlx::query(MAKE).bind(&fresh).execute(pool).await?;
            sqlx::query_scalar(READ).fetch_one(pool).await
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Creates a missing SQLite database file with mode 0600 before SQLite opens it (SQLite would
/// create it by the umask, often world-readable); its `-wal` and `-shm` files take that mode.
/// An existing file keeps the mode its owner gave it.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}
