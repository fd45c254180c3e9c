//! The POS screen (`terminal-fw pos`): the terminal as a merchant uses it, full-screen in a
//! text terminal. Power-on asks for an operator; the main menu holds every transaction,
//! the transaction query, settlement, sign-on, management and reprint; amounts are typed as
//! on a POS keypad; PINs and passwords show as `*`; each transaction ends on its receipt.
//!
//! ```text
//!  keys ─▶ App (screens, no I/O) ─▶ Job ─▶ Device (store, switch) ─▶ Outcome ─▶ App
//!            └─▶ ui::draw (ratatui) ─▶ the text terminal
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`app`] | the screens and what keys do |
//! | [`job`] | what a screen asks of the terminal |
//! | [`keypad`] | typing amounts, digits and secrets |
//! | [`text`] | the words, Chinese and English |
//! | [`ui`] | drawing |

pub mod app;
pub mod job;
pub mod keypad;
pub mod text;
pub mod ui;

use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};

pub use app::App;
pub use job::Device;
pub use text::Lang;

/// A key from the text terminal, as the POS knows it.
fn key_of(code: KeyCode) -> Option<app::Key> {
    Some(match code {
        KeyCode::Char(c) if c.is_ascii_digit() => app::Key::Digit(c),
        KeyCode::Char('*') => app::Key::Star,
        KeyCode::Enter => app::Key::Enter,
        KeyCode::Backspace => app::Key::Back,
        KeyCode::Esc => app::Key::Esc,
        KeyCode::Up => app::Key::Up,
        KeyCode::Down => app::Key::Down,
        _ => return None,
    })
}

/// Runs the POS until it is switched off (Esc on the login screen).
pub async fn run(mut device: Device) -> std::io::Result<()> {
    let mut screen = ratatui::try_init()?;
    let who = format!("TID {}", device.terminal.tid());
    let mut app = App::new(device.lang);
    let result = loop {
        if let Err(e) = screen.draw(|f| ui::draw(f, &app, &who)) {
            break Err(e);
        }
        if let Some(job) = app.job.take() {
            let outcome = device.run(app.operator.as_deref(), job).await;
            app.finish(outcome);
            continue;
        }
        if app.quit {
            break Ok(());
        }
        match event::poll(Duration::from_millis(250)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => break Err(e),
        }
        match event::read() {
            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => {
                if let Some(key) = key_of(k.code) {
                    app.key(key);
                }
            }
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    ratatui::try_restore()?;
    result
}
