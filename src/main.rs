use clap::Parser;
use squadron::config::{Cli, Command, FormatArg, RoleArg, TokenCommand};
use squadron::{startup, telemetry};
use squadron_actors::store::tokens::{Role, TokenFormat};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { command, config } = Cli::parse();
    telemetry::init(config.log_format);
    match command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = startup::build(config).await?;
            if let Some(token) = &server.admin_token {
                println!(
                    "\nCreated organization \"default\". Its admin token, shown only this once:\n\n    {token}\n"
                );
            }
            tracing::info!(address = %server.local_addr(), "Squadron is listening");
            server.run(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            startup::connect(&config).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            org,
            name,
            role,
            format,
        }) => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Member => Role::Member,
            };
            let format = match format {
                FormatArg::Pk => TokenFormat::Pk,
                FormatArg::Msq => TokenFormat::Msq,
            };
            println!(
                "{}",
                startup::create_token(&config, &org, &name, role, format).await?
            );
            Ok(())
        }
    }
}
