use clap::Parser as _;
use concierge::app::Application;
use concierge::config::{Cli, Command};

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
        Command::Serve(config) => {
            concierge::telemetry::init_tracing(&config.log_filter, config.log_format, std::io::stdout);
            Application::build(config).await?.run().await
        }
    }
}
