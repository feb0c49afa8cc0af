//! The dashboard in a real browser: `tests/npm/dashboard.mjs` drives Debian's Chromium with
//! Playwright against a server started here (and the fake upstream, for streams and
//! knowledge). The script signs in, watches a squad while it posts a comment and a heartbeat
//! through the API, drags a card, comments with @mention completion, watches a completion
//! stream, uploads and searches knowledge, and generates and revokes a token, checking each
//! through the API. It saves a screenshot of every view, at desktop and phone width, under
//! `target/dashboard-screenshots/`.

use std::path::Path;
use std::time::Duration;

use crate::helpers::spawn_with;
use crate::upstream;

/// Chromium and the npm packages, or `None` (test skipped) where they are not installed.
/// Under `scripts/test` (which installs both) a missing one fails instead.
fn browser() -> Option<String> {
    let chromium = std::env::var("SQUADRON_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let playwright = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/npm/node_modules/playwright-core"
    );
    if Path::new(&chromium).exists() && Path::new(playwright).exists() {
        return Some(chromium);
    }
    assert!(
        std::env::var_os("SQUADRON_TEST_NPM").is_none(),
        "scripts/test installs Chromium and tests/npm, yet {chromium} or {playwright} is missing"
    );
    eprintln!("skipped: needs Chromium and `npm ci` in tests/npm (scripts/test does both)");
    None
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(chromium) = browser() else { return };
    // The script adds an MCP server at a loopback address where nothing listens.
    let app = spawn_with(|c| c.mcp_allow_private = true).await;
    let fake = upstream::start().await;
    let root = env!("CARGO_MANIFEST_DIR");
    let backend = if crate::helpers::on_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let screenshots = format!("{root}/target/dashboard-screenshots/{backend}");
    // Last run's screenshots must not pass for this run's.
    let _ = std::fs::remove_dir_all(&screenshots);
    let run = tokio::process::Command::new("node")
        .arg(format!("{root}/tests/npm/dashboard.mjs"))
        .env("SQUADRON_URL", format!("http://{}", app.addr))
        .env("SQUADRON_TOKEN", &app.admin)
        .env("SQUADRON_UPSTREAM", &fake.base_url)
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test ends within 2 minutes")
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "dashboard.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Every view at both widths, but for sign-in at phone width.
    let views = [
        "signin",
        "squads",
        "squad",
        "task",
        "streams",
        "knowledge",
        "tools",
        "tokens",
    ];
    for view in views {
        for width in ["desktop", "phone"] {
            if view == "signin" && width == "phone" {
                continue;
            }
            let shot = format!("{screenshots}/{view}-{width}.png");
            assert!(Path::new(&shot).exists(), "{shot} was saved");
        }
    }
}
