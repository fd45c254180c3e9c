//! A journal that fails commits on demand, under a switch over real TCP: whatever kind of
//! request's commit fails, the terminal hears `96` and memory is exactly as it was before
//! the request (balances and what is held, PIN tries, originals, tombstones, stand-in
//! totals, sessions, claims), and the journal holds no trace of it. Sent again once the
//! journal works, the same request is processed afresh and applied once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use switch::clock::Timestamp;
use switch::daemon::{Environment, Node, keys};
use switch::journal::sqlite::Sqlite;
use switch::journal::{
    AccountRecord, Backend, BatchItem, BatchTotals, Journal, JournalError, Op, SafRecord,
    SessionRecord, Snapshot, TxnRecord, UploadRecord,
};
use switch::model::{AccountId, BatchNo, Rrn, Stan, Tid, TxnKey};
use switch::pipeline::Switch;

use crate::client::{CREDIT, DEBIT, Reply, Terminal};
use crate::issuer::REMOTE;
use crate::lifecycle::today_mmdd;

/// SQLite in memory, failing the next request's own commit (one with a transaction row or
/// a session) when armed.
struct Faulty {
    inner: Sqlite,
    fail_next: Arc<AtomicBool>,
}

impl Backend for Faulty {
    fn apply(&mut self, ops: &[&Op]) -> Result<(), JournalError> {
        let a_request = ops
            .iter()
            .any(|op| matches!(op, Op::Txn(_) | Op::PutSession(_)));
        if a_request && self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(JournalError::Storage("injected: disk I/O error".into()));
        }
        self.inner.apply(ops)
    }
    fn snapshot(&mut self, today: i64) -> Result<Snapshot, JournalError> {
        self.inner.snapshot(today)
    }
    fn probe(&mut self) -> Result<(), JournalError> {
        self.inner.probe()
    }
    fn reserve(&mut self, name: &str, n: u64) -> Result<u64, JournalError> {
        self.inner.reserve(name, n)
    }
    fn find(&mut self, rrn: &Rrn) -> Result<Option<TxnRecord>, JournalError> {
        self.inner.find(rrn)
    }
    fn find_trace(
        &mut self,
        tid: &Tid,
        batch: BatchNo,
        stan: Stan,
    ) -> Result<Vec<TxnRecord>, JournalError> {
        self.inner.find_trace(tid, batch, stan)
    }
    fn preauths(
        &mut self,
        query: &switch::journal::PreauthQuery,
    ) -> Result<Vec<TxnRecord>, JournalError> {
        self.inner.preauths(query)
    }
    fn max_stan(&mut self, tid: &Tid, batch: BatchNo) -> Result<Option<Stan>, JournalError> {
        self.inner.max_stan(tid, batch)
    }
    fn batch_totals(&mut self, tid: &Tid, batch: BatchNo) -> Result<BatchTotals, JournalError> {
        self.inner.batch_totals(tid, batch)
    }
    fn batch_items(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<BatchItem>, JournalError> {
        self.inner.batch_items(tid, batch)
    }
    fn uploads(&mut self, tid: &Tid, batch: BatchNo) -> Result<Vec<UploadRecord>, JournalError> {
        self.inner.uploads(tid, batch)
    }
    fn session(&mut self, tid: &Tid) -> Result<Option<SessionRecord>, JournalError> {
        self.inner.session(tid)
    }
    fn account(&mut self, id: &AccountId) -> Result<Option<AccountRecord>, JournalError> {
        self.inner.account(id)
    }
    fn add_card(
        &mut self,
        card: &AccountRecord,
        e: &switch::journal::AdminEntry,
    ) -> Result<bool, JournalError> {
        self.inner.add_card(card, e)
    }
    fn set_terminal_enabled(
        &mut self,
        tid: &switch::model::Tid,
        enabled: bool,
        e: &switch::journal::AdminEntry,
    ) -> Result<(), JournalError> {
        self.inner.set_terminal_enabled(tid, enabled, e)
    }
    fn set_issuer_drained(
        &mut self,
        issuer: &str,
        drained: bool,
        e: &switch::journal::AdminEntry,
    ) -> Result<(), JournalError> {
        self.inner.set_issuer_drained(issuer, drained, e)
    }
    fn drained_issuers(&mut self) -> Result<Vec<String>, JournalError> {
        self.inner.drained_issuers()
    }
    fn disabled_terminals(&mut self) -> Result<Vec<switch::model::Tid>, JournalError> {
        self.inner.disabled_terminals()
    }
    fn end_session(
        &mut self,
        tid: &switch::model::Tid,
        e: &switch::journal::AdminEntry,
    ) -> Result<bool, JournalError> {
        self.inner.end_session(tid, e)
    }
    fn change_card(
        &mut self,
        c: &switch::journal::CardChange,
    ) -> Result<Option<AccountRecord>, JournalError> {
        self.inner.change_card(c)
    }
    fn stand_in_used(&mut self, account: &AccountId, date: &str) -> Result<i64, JournalError> {
        self.inner.stand_in_used(account, date)
    }
    fn open_batches(&mut self) -> Result<(i64, i64), JournalError> {
        self.inner.open_batches()
    }
    fn register_node(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Result<(), String>, JournalError> {
        self.inner.register_node(node, holder, now, stale_before)
    }
    fn heartbeat(
        &mut self,
        node: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, JournalError> {
        self.inner.heartbeat(node, holder, now)
    }
    fn saf_lease(
        &mut self,
        issuer: &str,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, JournalError> {
        self.inner.saf_lease(issuer, node, now, until)
    }
    fn saf_queue(
        &mut self,
        issuer: &str,
        alive_since: Timestamp,
    ) -> Result<Vec<SafRecord>, JournalError> {
        self.inner.saf_queue(issuer, alive_since)
    }
}

/// Everything memory holds that a request could change, for one terminal and its cards.
#[derive(Debug, PartialEq)]
struct Memory {
    balances: Vec<(Option<i64>, Option<i64>, u8)>,
    stand_in: i64,
    batch: Option<u32>,
    tak: Option<String>,
    in_flight: usize,
    locked: usize,
    originals: Vec<Option<(bool, bool, i64)>>,
    tombstone: bool,
}

struct Rig {
    sw: Arc<Switch>,
    backend: Arc<Mutex<Box<dyn Backend>>>,
    fail_next: Arc<AtomicBool>,
    t: Terminal,
    accounts: Vec<AccountId>,
    remote: AccountId,
    rrns: Vec<Rrn>,
    tombstone_key: Option<TxnKey>,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Rig {
    fn memory(&self) -> Memory {
        let s = self.sw.state();
        let tid = Tid::parse(&self.t.tid).unwrap();
        Memory {
            balances: self
                .accounts
                .iter()
                .map(|a| {
                    (
                        s.accounts.balance_fen(a),
                        s.accounts.held_fen(a),
                        s.accounts.view(a).map_or(0, |v| v.pin_tries),
                    )
                })
                .collect(),
            stand_in: s.stand_in.used_fen(
                &self.remote,
                switch::clock::Timestamp::now().cst_day_number(),
            ),
            batch: s.sessions.get(&tid).map(|x| x.batch.0),
            tak: s.sessions.get(&tid).map(|x| x.tak.to_text()),
            in_flight: s.recent.in_flight(),
            locked: s.originals.locked(),
            originals: self
                .rrns
                .iter()
                .map(|r| {
                    s.originals
                        .cached(r)
                        .map(|o| (o.voided, o.reversed, o.refunded_fen))
                })
                .collect(),
            tombstone: self
                .tombstone_key
                .is_some_and(|k| s.recent.is_tombstone(&k)),
        }
    }

    fn journalled(&self, stan: u32, mti: u16) -> bool {
        let tid = Tid::parse(&self.t.tid).unwrap();
        let mut b = self.backend.lock().unwrap();
        b.find_trace(&tid, BatchNo(self.t.batch), Stan(stan))
            .unwrap()
            .iter()
            .any(|r| r.mti.as_u16() == mti)
    }

    /// Sends `frame` with the journal failing its commit: 96, memory as before, no row;
    /// then again with the journal working: the answer it gets.
    async fn fails_then(&mut self, what: &str, frame: &[u8], mti: u16) -> Reply {
        let stan = codec::decode(codec::Dialect::cup_pos(), frame)
            .unwrap()
            .digits(11)
            .unwrap()
            .to_u64()
            .unwrap() as u32;
        let before = self.memory();
        self.fail_next.store(true, Ordering::SeqCst);
        let r = self.t.exchange(frame).await;
        assert_eq!(r.rc(), "96", "{what}: a failed commit is 96");
        assert!(
            !self.fail_next.load(Ordering::SeqCst),
            "{what}: the request's commit was the one that failed"
        );
        assert_eq!(
            r.text(38),
            None,
            "{what}: no auth code for what was not recorded"
        );
        assert_eq!(
            self.memory(),
            before,
            "{what}: memory as before the request"
        );
        assert!(!self.journalled(stan, mti), "{what}: no journal row");
        self.t.exchange(frame).await
    }
}

async fn rig() -> Rig {
    let dir = crate::temp_dir("faults");
    // The remote issuer is unreachable (nothing listens on port 1): its sales go to
    // stand-in.
    let config = crate::issuer::config(&dir, vec!["127.0.0.1:1".into()], |i| {
        i.stand_in.enabled = true;
        i.stand_in.max_txn_fen = 10_000;
        i.stand_in.max_card_day_fen = 30_000;
        i.reconnect_min_ms = 60_000;
        i.reconnect_max_ms = 60_000;
    });
    let fail_next = Arc::new(AtomicBool::new(false));
    let backend: Arc<Mutex<Box<dyn Backend>>> = Arc::new(Mutex::new(Box::new(Faulty {
        inner: Sqlite::in_memory().unwrap(),
        fail_next: Arc::clone(&fail_next),
    })));
    let node = Node::start(
        &config,
        keys::load(&config).unwrap(),
        Journal::inline(Arc::clone(&backend)),
        Arc::new(switch::metrics::Metrics::new()),
        Environment::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let _server = node.serve(listener, stopped);
    let sw = Arc::clone(node.switch());
    let mut t = Terminal::connect(addr, "10000701").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let accounts = [DEBIT, CREDIT, "8800000000000001"]
        .iter()
        .map(|n| sw.account_id(n))
        .collect();
    let remote = sw.account_id(REMOTE);
    // The node's tasks live as long as the runtime of the test.
    std::mem::forget(node);
    Rig {
        sw,
        backend,
        fail_next,
        t,
        accounts,
        remote,
        rrns: Vec::new(),
        tombstone_key: None,
        _stop: stop,
    }
}

#[tokio::test]
async fn a_failed_commit_of_any_request_leaves_memory_and_the_journal_as_they_were() {
    let mut r = rig().await;

    // Sale: no money moves, nothing stays held; sent again, it is approved once.
    let mut b = r.t.sale_builder(DEBIT, Some("123456"), 10_000);
    let sale = r.t.seal(&mut b);
    let s = r.fails_then("sale", &sale, 200).await;
    assert_eq!(s.rc(), "00", "the sale sent again is processed afresh");
    let sale_rrn = Rrn::parse(&s.text(37).unwrap()).unwrap();
    r.rrns.push(sale_rrn);
    assert_eq!(
        r.t.exchange(&sale).await.text(37),
        s.text(37),
        "then a replay"
    );

    // A wrong PIN: the try it would count is not counted.
    let mut b = r.t.sale_builder(CREDIT, Some("111111"), 500);
    let wrong = r.t.seal(&mut b);
    assert_eq!(r.fails_then("wrong PIN", &wrong, 200).await.rc(), "55");

    // Balance inquiry.
    let mut b = r.t.balance_builder(DEBIT, "123456");
    let balance = r.t.seal(&mut b);
    let bal = r.fails_then("balance", &balance, 200).await;
    assert_eq!(bal.rc(), "00");

    // QR sale on the wallet.
    let mut b = r.t.qr_builder("280000000000000001", 2_000, None);
    let qr = r.t.seal(&mut b);
    let q = r.fails_then("QR sale", &qr, 200).await;
    assert_eq!(q.rc(), "00");

    // Refund of part of the sale: the sale's refunded amount stays.
    let mut b =
        r.t.refund_builder(DEBIT, 1_000, sale_rrn.as_str(), &today_mmdd());
    let refund = r.t.seal(&mut b);
    assert_eq!(r.fails_then("refund", &refund, 220).await.rc(), "00");

    // A second sale, voided: the void's mark and money back do not happen.
    let s2 = r.t.sale(DEBIT, "123456", 3_000).await;
    assert_eq!(s2.rc(), "00");
    r.rrns.push(Rrn::parse(&s2.text(37).unwrap()).unwrap());
    let s2_stan = r.t.stan;
    let mut b = r.t.void_builder(DEBIT, 3_000, s2_stan, None);
    let void = r.t.seal(&mut b);
    assert_eq!(r.fails_then("void", &void, 200).await.rc(), "00");

    // Reversal of the first sale: it stays unreversed, its money stays taken.
    let reversal = r.t.reversal_frame(&sale);
    assert_eq!(r.fails_then("reversal", &reversal, 400).await.rc(), "00");

    // A reversal before its original: no tombstone is left; the original, when it then
    // comes, is approved rather than refused.
    let mut b = r.t.sale_builder(DEBIT, Some("123456"), 700);
    let late = r.t.seal(&mut b);
    let key = TxnKey {
        tid: Tid::parse(&r.t.tid).unwrap(),
        batch: BatchNo(r.t.batch),
        stan: Stan(r.t.stan),
        mti: 200,
    };
    r.tombstone_key = Some(key);
    let early = r.t.reversal_frame(&late);
    let before = r.memory();
    r.fail_next.store(true, Ordering::SeqCst);
    assert_eq!(r.t.exchange(&early).await.rc(), "96");
    assert_eq!(r.memory(), before, "reversal before original: no tombstone");
    assert_eq!(
        r.t.exchange(&late).await.rc(),
        "00",
        "the original is not refused: its reversal was never recorded"
    );

    // Stand-in: the card's day total does not grow.
    let mut b = r.t.sale_builder(REMOTE, Some("111111"), 9_000);
    let stand_in = r.t.seal(&mut b);
    let si = r.fails_then("stand-in sale", &stand_in, 200).await;
    assert_eq!(si.rc(), "00");
    assert!(si.text(38).unwrap().starts_with('S'));
    assert_eq!(
        r.sw.state()
            .stand_in
            .used_fen(&r.remote, switch::clock::Timestamp::now().cst_day_number()),
        9_000,
        "counted once"
    );

    // Settlement: the batch stays open.
    let stan = r.t.stan + 1;
    let before = r.memory();
    r.fail_next.store(true, Ordering::SeqCst);
    assert_eq!(r.t.settle(0, 0, 0, 0).await.rc(), "96");
    assert_eq!(r.memory(), before, "settlement: the batch is not closed");
    assert!(!r.journalled(stan, 500));
    let settled = r.t.settle(0, 0, 0, 0).await;
    assert_eq!(settled.rc(), "00");
    let tid = Tid::parse(&r.t.tid).unwrap();
    assert_eq!(
        r.sw.state().sessions.get(&tid).unwrap().batch.0,
        r.t.batch + 1
    );
    r.t.batch += 1;

    // Sign-on: the old keys stay; the terminal keeps paying with them.
    let before = r.memory();
    r.fail_next.store(true, Ordering::SeqCst);
    assert_eq!(r.t.sign_on().await.rc(), "96");
    assert_eq!(r.memory(), before, "sign-on: the session is not replaced");
    assert_eq!(r.t.sale(DEBIT, "123456", 1).await.rc(), "00");

    // Batch upload.
    let before = r.memory();
    r.fail_next.store(true, Ordering::SeqCst);
    let batch = r.t.batch - 1;
    assert_eq!(r.t.upload(batch, &[(1, 1, "22")], true).await.rc(), "96");
    assert_eq!(r.memory(), before, "upload");

    // In the end, the money moved exactly as the approvals said, once each: the first
    // sale was partly refunded and then reversed (nothing taken), the second voided; the
    // late original and the last sale stand.
    let debit = r.sw.state().accounts.balance_fen(&r.accounts[0]).unwrap();
    assert_eq!(debit, 1_000_000 - 700 - 1);
    let wallet = r.sw.state().accounts.balance_fen(&r.accounts[2]).unwrap();
    assert_eq!(wallet, 500_000 - 2_000);
}
