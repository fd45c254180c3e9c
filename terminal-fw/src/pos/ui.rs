//! Drawing the screens with ratatui: a title line (the terminal, the operator), the screen,
//! and a line of the keys it takes.
//!
//! ```text
//!  ┌ 银联POS UnionPay POS ─ TID 10000001 ─ 操作员 01 ┐
//!  │ 主菜单 Main menu                                  │
//!  │ > 1 消费 Sale                                     │
//!  │   2 撤销 Void                                     │
//!  │   …                                               │
//!  └ 数字键/↑↓选择 确认Enter 退出Esc ───────────────────┘
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{App, Screen};
use super::text::says;
use crate::codes;

/// Draws the POS: `who` is the title line's terminal part.
pub fn draw(f: &mut Frame<'_>, app: &App, who: &str) {
    let lang = app.lang;
    let operator = app
        .operator
        .as_deref()
        .map_or(String::new(), |o| format!(" ─ 操作员 Operator {o}"));
    let keys = match &app.screen {
        Screen::Menu { .. } | Screen::Pick(_) => says::KEYS_MENU,
        Screen::Form(_) => says::KEYS_FORM,
        Screen::Show { .. } => says::KEYS_SHOW,
        Screen::Busy(_) => says::PROCESSING,
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} ─ {who}{operator} ", lang.say(says::TITLE)))
        .title_bottom(format!(" {} ", lang.say(keys)));
    let inner = block.inner(f.area());
    f.render_widget(block, f.area());
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let warn = Style::default().fg(Color::Red);
    let mut lines: Vec<Line<'_>> = Vec::new();
    let title = match &app.screen {
        Screen::Menu { menu, note, .. } => {
            if let Some(n) = note {
                lines.push(Line::styled(n.clone(), warn));
            }
            menu.title()
        }
        Screen::Form(form) => {
            for (i, (step, value)) in form.steps.iter().zip(&form.values).enumerate() {
                if i > form.at {
                    break;
                }
                let cursor = if i == form.at { "_" } else { "" };
                let shown = value.shown(step.kind);
                let unit = match step.kind {
                    super::keypad::Kind::Amount => " CNY",
                    _ => "",
                };
                lines.push(Line::from(format!("{}:", lang.say(step.label))));
                let style = if i == form.at { bold } else { Style::default() };
                lines.push(Line::styled(format!("    {shown}{unit}{cursor}"), style));
            }
            if let Some(n) = &form.note {
                lines.push(Line::default());
                lines.push(Line::styled(n.clone(), warn));
            }
            form.title
        }
        Screen::Pick(p) => {
            for (i, e) in p.entries.iter().enumerate() {
                let mark = if i == p.sel { ">" } else { " " };
                let text = format!(
                    "{mark} {:06} {:<16} {:<19} {:>12} {}",
                    e.stan,
                    e.kind,
                    e.masked_pan,
                    codes::yuan_grouped(e.amount_fen),
                    if e.rc == "00" {
                        String::new()
                    } else {
                        codes::describe(&e.rc)
                    }
                );
                lines.push(if i == p.sel {
                    Line::styled(text, bold)
                } else {
                    Line::from(text)
                });
            }
            says::PICK
        }
        Screen::Busy(l) => {
            lines.push(Line::from(lang.say(*l)));
            says::PROCESSING
        }
        Screen::Show {
            title, lines: l, ..
        } => {
            lines.extend(l.iter().map(|s| Line::from(s.clone())));
            *title
        }
    };
    if let Screen::Menu { menu, sel, .. } = &app.screen {
        for (i, (key, label, _)) in menu.items().iter().enumerate() {
            let text = format!(
                "{} {key} {}",
                if i == *sel { ">" } else { " " },
                lang.say(*label)
            );
            lines.push(if i == *sel {
                Line::styled(text, bold)
            } else {
                Line::from(text)
            });
        }
    }
    f.render_widget(Paragraph::new(Line::styled(lang.say(title), bold)), head);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
}
