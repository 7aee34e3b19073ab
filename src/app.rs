//! Building and running the gateway: database, migrations, key cache, upstream client, router,
//! listener; then serving until shutdown, letting open streams finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::keys::KeyCache;
use crate::limits::Limiter;
use crate::routes::router;
use crate::state::{AppState, Shared};
use crate::store::Db;
use crate::telemetry::labels::ModelLabels;
use crate::telemetry::metrics_handle;
use crate::upstream::ZhipuClient;
use crate::usage::{maintenance, run_writer, Journal, JournalOptions, Ledger, WriterSettings};

/// After the grace period, how long ended streams get to reach their clients.
const CLOSING_TIME: std::time::Duration = std::time::Duration::from_secs(5);

pub struct App {
    listener: TcpListener,
    state: AppState,
    /// The ledger writer; it outlives the server, to drain what the last requests recorded.
    writer: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
}

#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    pub migrate: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self { migrate: true }
    }
}

impl App {
    /// Connects, migrates (unless told not to), loads the keys and binds the listener; a port
    /// of 0 picks a free one (see `local_addr`).
    pub async fn build(config: Config, options: BuildOptions) -> anyhow::Result<Self> {
        let db = Db::connect(config.database_url.expose())
            .await
            .context("cannot open the database (DATABASE_URL)")?;
        if options.migrate {
            db.migrate()
                .await
                .context("cannot apply the database migrations")?;
        }
        let keys = Arc::new(KeyCache::new(db.clone()));
        keys.reload(&db).await.context("cannot load the API keys")?;
        let zhipu = ZhipuClient::new(&config.zhipu, &config.images)
            .context("cannot build the upstream HTTP client")?;
        let metrics = metrics_handle();
        let journal = match config.usage.enabled {
            true => Some(Arc::new(open_journal(&config, &db).await?)),
            false => None,
        };
        // One price book: estimates for the budgets and the ledger's rows price alike.
        let prices = config.price_book();
        let limits = Arc::new(Limiter::new(&config.limits, &db, prices.clone())?);
        let ledger = Ledger::new(journal.clone(), prices, config.usage.store_content)
            .with_labels(ModelLabels::new(&config));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let state = AppState::new(Shared {
            config: Arc::new(config),
            db,
            keys,
            zhipu: Arc::new(zhipu),
            ledger: Arc::new(ledger),
            limits,
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            metrics,
        });
        state.keys.spawn_refresh(
            state.db.clone(),
            state.config.server.key_refresh,
            state.shutdown.clone(),
            &state.tasks,
        );
        // Today's partition must exist before the first row arrives, or rows would land in the
        // default partition and block its creation.
        let today = chrono::Utc::now().date_naive();
        if let Err(error) = state
            .db
            .prepare_partitions(today - chrono::Days::new(1), today + chrono::Days::new(3))
            .await
        {
            tracing::warn!(%error, "cannot prepare usage_events partitions");
        }
        state
            .limits
            .spawn_background(
                state.db.clone(),
                state.config.server.key_refresh,
                state.shutdown.clone(),
                &state.tasks,
            )
            .await;
        maintenance::spawn(
            state.db.clone(),
            state.config.usage.retention_days,
            state.shutdown.clone(),
            &state.tasks,
        );
        let writer = journal.map(|journal| {
            let stop = CancellationToken::new();
            let settings = WriterSettings {
                batch_size: state.config.usage.batch_size,
                flush_interval: state.config.usage.flush_interval,
                drain_timeout: state.config.server.shutdown_grace,
            };
            #[expect(
                clippy::disallowed_methods,
                reason = "awaited on its own after the tracker's tasks, so it writes their rows"
            )]
            let task = tokio::spawn(run_writer(
                journal,
                state.db.clone(),
                settings,
                stop.clone(),
            ));
            (task, stop)
        });
        Ok(Self {
            listener,
            state,
            writer,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then stops accepting, lets open requests and streams
    /// finish within `server.shutdown_grace`, stops background work and closes the database.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            writer,
        } = self;
        let shutdown = state.shutdown.clone();
        let grace = state.config.server.shutdown_grace;
        tracing::info!(
            keys = state.keys.len(),
            database = state.db.backend(),
            "gateway ready"
        );
        #[expect(
            clippy::disallowed_methods,
            reason = "only waits for the signal; nothing to finish at shutdown"
        )]
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                signal.await;
                tracing::info!("shutting down; letting open requests finish");
                shutdown.cancel();
            }
        });
        let serve = crate::server::serve(
            listener,
            router(state.clone()),
            (&state.config.server).into(),
            shutdown.clone(),
        );
        tokio::pin!(serve);
        let grace_over = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = &mut serve => {}
            () = grace_over => {
                // Streams still open end now, each with an error event and its ledger row.
                tracing::warn!("shutdown grace period over; ending open streams");
                state.hard_stop.cancel();
                if tokio::time::timeout(CLOSING_TIME, &mut serve).await.is_err() {
                    tracing::warn!("closing connections that are still open");
                }
            }
        }
        state.hard_stop.cancel();
        state.tasks.close();
        if tokio::time::timeout(CLOSING_TIME, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks still running at exit");
        }
        state.limits.drain().await;
        if let Some((task, stop)) = writer {
            stop.cancel();
            if task.await.is_err() {
                tracing::error!("the ledger writer failed; unwritten rows stay in the journal");
            }
        }
        state.db.close().await;
        Ok(())
    }
}

/// Opens the usage journal bound to this database: rows it holds for another database (the
/// folder is kept while DATABASE_URL changed) are set aside, never inserted here.
async fn open_journal(config: &Config, db: &Db) -> anyhow::Result<Journal> {
    let database_id = match db.database_id().await {
        Ok(id) => Some(id),
        Err(error) => {
            tracing::warn!(%error, "cannot read the database identity (migrations not applied?); the usage journal is not bound to this database");
            None
        }
    };
    let options = JournalOptions {
        memory_rows: config.usage.memory_rows,
        on_full: config.usage.on_journal_full,
        database_id,
    };
    let dir = &config.usage.journal_dir;
    Journal::open_with(dir, &options)
        .with_context(|| format!("cannot open the usage journal in {}", dir.display()))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
