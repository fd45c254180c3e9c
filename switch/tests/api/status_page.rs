//! The live status page in a real browser: headless Chromium loads it from a running switch
//! under load, runs its script, and the figures it shows move and agree with `/metrics`.
//! Skipped (saying so) where Chromium is not installed; CI installs it.

use std::time::Duration;

use crate::client::{DEBIT, Terminal};
use crate::e2e::reqwest_metrics;
use crate::{start, temp_dir, test_config};

/// The browser, if there is one.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The page's DOM after its script ran (a few polls of simulated time).
async fn dom(browser: &'static str, url: String) -> String {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=5000",
                "--dump-dom",
                &url,
            ])
            .output()
            .expect("chromium runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

/// The text of the element with `id`.
fn text<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let rest = &dom[at..];
    let rest = &rest[rest.find('>').map_or(rest.len(), |i| i + 1)..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}

fn total(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("switch_transactions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn the_status_page_shows_live_figures_that_match_the_metrics() {
    let Some(browser) = chromium() else {
        eprintln!("chromium not installed: the status page was not tested in a browser");
        return;
    };
    let dir = temp_dir("status-page");
    let sw = start(test_config(&dir)).await;
    let addr = sw.terminal_addr;
    // Load: sales on two terminals, and a wrong PIN now and then.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for tid in ["10000091", "10000092"] {
        let stop = std::sync::Arc::clone(&stop);
        load.push(tokio::spawn(async move {
            let mut t = Terminal::connect(addr, tid).await;
            assert_eq!(t.sign_on().await.rc(), "00");
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let pin = if n.is_multiple_of(10) {
                    "111111"
                } else {
                    "123456"
                };
                let rc = t.sale(DEBIT, pin, 100).await.rc().to_owned();
                assert!(rc == "00" || rc == "55" || rc == "75", "{rc}");
                if rc == "55" {
                    // The next right PIN resets the tries.
                    assert_eq!(t.sale(DEBIT, "123456", 100).await.rc(), "00");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = format!("http://{}/", sw.metrics_addr);

    let before = total(&reqwest_metrics(sw.metrics_addr).await);
    let first = dom(browser, url.clone()).await;
    let after = total(&reqwest_metrics(sw.metrics_addr).await);
    let shown: f64 = text(&first, "txn-total").parse().expect("a number");
    assert!(
        before <= shown && shown <= after,
        "page {shown}, /metrics {before}..{after}"
    );
    assert_eq!(text(&first, "connections"), "2");
    assert_eq!(text(&first, "sessions"), "2");
    assert_eq!(text(&first, "ready"), "yes");
    assert!(
        text(&first, "p99").ends_with("ms"),
        "{}",
        text(&first, "p99")
    );
    assert!(text(&first, "build").contains(env!("CARGO_PKG_VERSION")));
    // Declines: their code, in words, with masked cards only.
    assert!(first.contains("pin_wrong"), "{first}");
    assert!(first.contains("622202*********0017"), "{first}");
    assert!(!first.contains(DEBIT), "a whole PAN on the page");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = dom(browser, url).await;
    let moved: f64 = text(&second, "txn-total").parse().unwrap();
    assert!(moved > shown, "the figures move: {shown} then {moved}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    sw.shutdown().await;
}
