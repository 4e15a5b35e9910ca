// See src/lib.rs: the merged Mutation object needs more than the default 128 levels.
#![recursion_limit = "256"]
use clap::Parser as _;
use concierge::app::Application;
use concierge::config::{AdminAccountStatus, AdminTask, Cli, Command};
use concierge::db::StoredEnum as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().into_command() {
        Command::Schema => {
            print!("{}", concierge::graphql::sdl());
            Ok(())
        }
        Command::Migrate(config) => {
            concierge::telemetry::init_tracing(&config.log_filter, config.log_format, std::io::stdout);
            let db = concierge::db::Db::connect(&config.database_url(), Some(1)).await?;
            db.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Admin(args) => {
            let config = args.config;
            concierge::telemetry::init_tracing(&config.log_filter, config.log_format, std::io::stderr);
            let db = concierge::db::Db::connect(&config.database_url(), Some(2)).await?;
            db.migrate().await?;
            match args.task {
                AdminTask::SetAccountStatus { email, status } => {
                    use concierge::identity::model::{AccountStatus, Email};
                    let email = Email::parse("email", &email).map_err(|e| anyhow::anyhow!("--email: {}", e.message()))?;
                    let status = match status {
                        AdminAccountStatus::Active => AccountStatus::Active,
                        AdminAccountStatus::Inactive => AccountStatus::Inactive,
                    };
                    // On PostgreSQL the change reaches running gateways' live connections.
                    let stop = tokio_util::sync::CancellationToken::new();
                    let fanout = concierge::fanout::Fanout::start(db.clone(), stop.clone()).await?;
                    let set = concierge::identity::service::operator_set_account_status(&db, &fanout, &email, status).await;
                    stop.cancel();
                    let id = set.map_err(|e| match e {
                        concierge::error::Error::Internal(e) => e,
                        other => anyhow::anyhow!("{}", other.message()),
                    })?;
                    println!("account {id} ({}) is now {}", email.as_str(), status.stored_name());
                }
            }
            db.close().await;
            Ok(())
        }
        Command::Rekey(args) => {
            let config = args.config;
            concierge::telemetry::init_tracing(&config.log_filter, config.log_format, std::io::stderr);
            let old =
                concierge::crypto::SecretBox::from_old_key(args.old_key.as_ref().map(|k| k.0.as_str()), args.old_key_file.as_deref())?;
            let new = concierge::crypto::SecretBox::load(config.secret_key.as_ref().map(|k| k.0.as_str()), &config.data_dir)?;
            let db = concierge::db::Db::connect(&config.database_url(), Some(2)).await?;
            db.migrate().await?;
            let report = concierge::rekey::rekey(&db, &old, &new).await;
            db.close().await;
            let report = report?;
            for column in &report.columns {
                println!(
                    "{:<36} resealed {:>6}   already current {:>6}   unreadable {:>6}",
                    column.name, column.resealed, column.current, column.unreadable
                );
            }
            println!("{} secrets sealed under the new key", report.resealed());
            if report.unreadable() > 0 {
                eprintln!(
                    "{} secrets opened with neither key and were left: their owners will be asked to sign in again",
                    report.unreadable()
                );
            }
            Ok(())
        }
        Command::Serve(config) => {
            let traces = concierge::telemetry::traces::Traces::from_env()?;
            concierge::telemetry::init_tracing_with(&config.log_filter, config.log_format, std::io::stdout, traces.as_ref());
            let served = match Application::build(config).await {
                Ok(app) => app.run().await,
                Err(e) => Err(e),
            };
            // The spans of the last requests are still buffered: send them before exiting.
            if let Some(traces) = traces {
                let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
            }
            served
        }
    }
}
