//! What stands between an unauthenticated caller and Argon2.
//!
//! A password check costs ~19 MiB and tens of milliseconds of CPU (Argon2id's
//! default parameters), and anyone who can reach the port can ask for one, so
//! this module bounds every part of it:
//!
//! - [`Hasher`]: a fixed pool of `permits` hashing threads (default: the number of
//!   cores), each with one reused Argon2 memory buffer, so hashing memory is
//!   `permits × m_cost` for the life of the process however many requests arrive.
//!   A request waits for a free thread at most [`AuthLimits::hash_wait`], then is
//!   told to come back later (503 + `Retry-After`); a waiting request holds only
//!   its password, never Argon2 memory. Unknown users go through the same pool
//!   (a dummy hash), so they cost the same and are bounded the same.
//! - [`VerifiedCache`]: successful verifications, for a short TTL, so clients that
//!   send HTTP basic auth on every request (vmware-nsxlib) pay for Argon2 once per
//!   TTL instead of once per call. The key is HMAC-SHA256 under a per-process
//!   random key of `user id ‖ 0 ‖ password`: neither the password nor an unkeyed
//!   hash of it is stored. An entry also remembers a digest of the stored password
//!   hash, so a changed password invalidates it at once.
//! - [`Lockout`]: Keystone's `[security_compliance] lockout_failure_attempts` /
//!   `lockout_duration` per user: after N consecutive failures the account is
//!   locked (even the right password is refused, without hashing) until the
//!   duration has passed since the last failure; a success resets the count.
//! - [`Throttle`]: failures per source address in a fixed window; an address over
//!   the limit gets 429 for every password attempt (without hashing, and without
//!   consulting the cache, which would otherwise confirm a guessed password) until
//!   its window ends.
//!
//! All state is in memory (a restart forgets lock-outs, like a cache flush), and
//! every map is capped: expired entries go first, then the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Limits on password authentication (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLimits {
    /// Password hashes computed at once (hashing threads). At least 1.
    pub hash_permits: usize,
    /// Longest a request waits for a hashing thread before 503.
    pub hash_wait: Duration,
    /// How long a successful password verification is remembered (0: never).
    pub verified_ttl: Duration,
    /// Consecutive failures that lock a user (0: no lock-out).
    pub lockout_failure_attempts: u32,
    /// How long a locked user stays locked after the last failure.
    pub lockout_duration: Duration,
    /// Failures from one source address that make it wait (0: no throttling).
    pub throttle_failures: u32,
    /// The window those failures are counted in.
    pub throttle_window: Duration,
}

impl Default for AuthLimits {
    fn default() -> AuthLimits {
        AuthLimits {
            hash_permits: default_permits(),
            hash_wait: Duration::from_secs(2),
            verified_ttl: Duration::from_secs(60),
            // Off, as in Keystone: on by default, anyone could keep `admin`
            // locked with a few wrong passwords a minute from anywhere.
            lockout_failure_attempts: 0,
            lockout_duration: Duration::from_secs(300),
            throttle_failures: 30,
            throttle_window: Duration::from_secs(60),
        }
    }
}

/// One hashing thread per core.
pub fn default_permits() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Entries kept in each of the maps below.
pub const MAX_ENTRIES: usize = 10_000;

/// Largest Argon2 `m_cost` (KiB) a stored hash may ask for; above it the hash is
/// refused rather than allocated (the defaults use 19,456).
const MAX_M_COST: u32 = 256 * 1024;

/// Why a password check did not get as far as a yes/no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No hashing thread became free within the wait.
    Busy,
}

/// Hashing counters, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct HashStats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    total: AtomicUsize,
}

impl HashStats {
    /// Hashes computed so far.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
    /// Most hashes that ever ran at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

struct Job {
    password: Vec<u8>,
    phc: String,
    done: oneshot::Sender<bool>,
    /// Held until the hash is computed, even if the request is gone by then.
    permit: OwnedSemaphorePermit,
}

/// The bounded Argon2 verification pool.
pub struct Hasher {
    permits: Arc<Semaphore>,
    jobs: mpsc::SyncSender<Job>,
    wait: Duration,
    stats: Arc<HashStats>,
}

impl Hasher {
    /// Starts `permits` hashing threads (at least one).
    pub fn new(permits: usize, wait: Duration) -> Hasher {
        let permits = permits.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job>(permits);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(HashStats::default());
        for i in 0..permits {
            let rx = Arc::clone(&rx);
            let stats = Arc::clone(&stats);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx, &stats));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hasher {
            permits: Arc::new(Semaphore::new(permits)),
            jobs: tx,
            wait,
            stats,
        }
    }

    /// The pool's counters.
    pub fn stats(&self) -> &HashStats {
        &self.stats
    }

    /// Whether `password` matches the PHC string `phc`, computed on a hashing
    /// thread; `Err(Busy)` if none became free within the wait.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Refusal> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| Refusal::Busy)?
            .map_err(|_| Refusal::Busy)?;
        let (done, result) = oneshot::channel();
        let job = Job {
            password: password.as_bytes().to_vec(),
            phc: phc.to_string(),
            done,
            permit,
        };
        // Never blocks: at most `permits` jobs exist, and the channel holds that many.
        self.jobs.try_send(job).map_err(|_| Refusal::Busy)?;
        result.await.map_err(|_| Refusal::Busy)
    }
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>, stats: &HashStats) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else { return };
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let ok = verify_with_memory(&mut memory, &job.password, &job.phc);
        job.password.fill(0);
        std::hint::black_box(&job.password);
        stats.total.fetch_add(1, Ordering::SeqCst);
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        let Job { done, permit, .. } = job;
        drop(permit);
        let _ = done.send(ok);
    }
}

/// Argon2 verification into a caller-owned, reused memory buffer (so the ~19 MiB
/// is allocated once per hashing thread, not once per check).
pub fn verify_with_memory(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// A capped map whose entries expire; when full, expired entries are dropped,
/// then the one that expires first.
struct Capped<K, V> {
    map: HashMap<K, (V, Instant)>,
    cap: usize,
}

impl<K: Eq + Hash + Clone, V> Capped<K, V> {
    fn new(cap: usize) -> Self {
        Capped {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    fn make_room(&mut self, now: Instant) {
        if self.map.len() < self.cap {
            return;
        }
        self.map.retain(|_, (_, until)| *until > now);
        if self.map.len() >= self.cap
            && let Some(first) = self
                .map
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&first);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Successful password verifications, keyed by a keyed hash (see the module doc).
pub struct VerifiedCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<Capped<[u8; 32], Verified>>,
}

#[derive(Clone)]
struct Verified {
    user_id: String,
    /// SHA-256 of the stored password hash the password was verified against.
    stored: [u8; 32],
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl VerifiedCache {
    /// An empty cache keeping each verification for `ttl`, at most `cap`
    /// entries, under a fresh random HMAC key.
    pub fn new(ttl: Duration, cap: usize) -> VerifiedCache {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        VerifiedCache {
            key,
            ttl,
            entries: Mutex::new(Capped::new(cap)),
        }
    }

    /// The cache key of a (user id, password) pair.
    pub fn key_of(&self, user_id: &str, password: &str) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(user_id.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` was verified for `user_id` against `stored_hash`
    /// within the TTL.
    pub fn hit(&self, user_id: &str, password: &str, stored_hash: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let k = self.key_of(user_id, password);
        let Ok(mut m) = self.entries.lock() else {
            return false;
        };
        let now = Instant::now();
        match m.map.get(&k) {
            Some((v, until)) if *until > now => v.user_id == user_id && v.stored == digest(stored_hash),
            Some(_) => {
                m.map.remove(&k);
                false
            }
            None => false,
        }
    }

    /// Remembers a successful verification.
    pub fn insert(&self, user_id: &str, password: &str, stored_hash: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let k = self.key_of(user_id, password);
        if let Ok(mut m) = self.entries.lock() {
            let now = Instant::now();
            m.make_room(now);
            m.map.insert(
                k,
                (
                    Verified {
                        user_id: user_id.to_string(),
                        stored: digest(stored_hash),
                    },
                    now + self.ttl,
                ),
            );
        }
    }

    /// Forgets every verification of `user_id` (its password failed or changed).
    pub fn forget_user(&self, user_id: &str) {
        if let Ok(mut m) = self.entries.lock() {
            m.map.retain(|_, (v, _)| v.user_id != user_id);
        }
    }

    /// Entries held, expired ones included until they are evicted.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw keys, for tests that check what is stored.
    #[cfg(test)]
    fn keys(&self) -> Vec<[u8; 32]> {
        self.entries
            .lock()
            .map(|m| m.map.keys().copied().collect())
            .unwrap_or_default()
    }
}

/// Per-user lock-out after consecutive failures (Keystone's semantics).
pub struct Lockout {
    attempts: u32,
    duration: Duration,
    /// user id → (consecutive failures, until when the entry matters).
    failures: Mutex<Capped<String, u32>>,
}

impl Lockout {
    /// Locks a user after `attempts` consecutive failures (0: never) for
    /// `duration` after the last one; tracks at most `cap` users.
    pub fn new(attempts: u32, duration: Duration, cap: usize) -> Lockout {
        Lockout {
            attempts,
            duration,
            failures: Mutex::new(Capped::new(cap)),
        }
    }

    /// Whether `user_id` is locked now; an expired lock is cleared (the count
    /// starts again from zero, as in Keystone).
    pub fn locked(&self, user_id: &str) -> bool {
        if self.attempts == 0 {
            return false;
        }
        let Ok(mut m) = self.failures.lock() else {
            return false;
        };
        let now = Instant::now();
        match m.map.get(user_id) {
            Some((n, until)) if *until > now => *n >= self.attempts,
            Some(_) => {
                m.map.remove(user_id);
                false
            }
            None => false,
        }
    }

    /// Counts a failed password check of `user_id`.
    pub fn failed(&self, user_id: &str) {
        if self.attempts == 0 {
            return;
        }
        if let Ok(mut m) = self.failures.lock() {
            let now = Instant::now();
            let until = now + self.duration;
            let n = match m.map.get(user_id) {
                Some((n, u)) if *u > now => *n,
                _ => 0,
            };
            if !m.map.contains_key(user_id) {
                m.make_room(now);
            }
            m.map.insert(user_id.to_string(), (n.saturating_add(1), until));
        }
    }

    /// A successful check: the count starts again.
    pub fn succeeded(&self, user_id: &str) {
        if let Ok(mut m) = self.failures.lock() {
            m.map.remove(user_id);
        }
    }
}

/// Failed password checks per source address, in fixed windows.
pub struct Throttle {
    failures: u32,
    window: Duration,
    /// address → (failures in the window, end of the window).
    by_addr: Mutex<Capped<IpAddr, u32>>,
}

impl Throttle {
    /// Refuses an address after `failures` failures (0: never) within one
    /// `window`; tracks at most `cap` addresses.
    pub fn new(failures: u32, window: Duration, cap: usize) -> Throttle {
        Throttle {
            failures,
            window,
            by_addr: Mutex::new(Capped::new(cap)),
        }
    }

    /// How long `addr` must wait before its next password attempt, if it must.
    pub fn wait(&self, addr: Option<IpAddr>) -> Option<Duration> {
        let addr = addr?;
        if self.failures == 0 {
            return None;
        }
        let m = self.by_addr.lock().ok()?;
        let now = Instant::now();
        match m.map.get(&addr) {
            Some((n, end)) if *end > now && *n >= self.failures => Some(*end - now),
            _ => None,
        }
    }

    /// Counts a failed password check from `addr`.
    pub fn failed(&self, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        if self.failures == 0 {
            return;
        }
        if let Ok(mut m) = self.by_addr.lock() {
            let now = Instant::now();
            let entry = match m.map.get(&addr) {
                Some((n, end)) if *end > now => (n.saturating_add(1), *end),
                _ => (1, now + self.window),
            };
            if !m.map.contains_key(&addr) {
                m.make_room(now);
            }
            m.map.insert(addr, entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_memory_verifies_like_the_crate() {
        let h = crate::hash_password("correct horse").unwrap();
        let mut mem = Vec::new();
        assert!(verify_with_memory(&mut mem, b"correct horse", &h));
        assert!(!verify_with_memory(&mut mem, b"wrong horse", &h));
        assert!(!verify_with_memory(&mut mem, b"x", "not a hash"));
        assert_eq!(mem.len(), Params::DEFAULT.block_count());
        // the dummy hash parses, costs a real hash, and matches nothing
        assert!(!verify_with_memory(&mut mem, b"", crate::password::dummy_hash()));
        assert!(PasswordHash::new(crate::password::dummy_hash()).is_ok());
    }

    #[test]
    fn absurd_memory_cost_is_refused_not_allocated() {
        let phc =
            "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let mut mem = Vec::new();
        assert!(!verify_with_memory(&mut mem, b"pw", phc));
        assert!(mem.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_never_exceeds_the_permits() {
        let h = Arc::new(Hasher::new(2, Duration::from_secs(60)));
        let phc = crate::hash_password("pw").unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let h = Arc::clone(&h);
                let phc = phc.clone();
                tokio::spawn(async move { h.verify(&format!("wrong{i}"), &phc).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(false));
        }
        assert_eq!(h.stats().total(), 12);
        assert_eq!(h.stats().max_in_flight(), 2);
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_after_the_wait() {
        let h = Arc::new(Hasher::new(1, Duration::from_millis(1)));
        let phc = crate::hash_password("pw").unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let h = Arc::clone(&h);
                let phc = phc.clone();
                tokio::spawn(async move { h.verify("pw", &phc).await })
            })
            .collect();
        let mut busy = 0;
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Err(Refusal::Busy) => busy += 1,
                Ok(true) => ok += 1,
                Ok(false) => panic!("right password refused"),
            }
        }
        assert!(ok >= 1 && busy >= 1, "ok={ok} busy={busy}");
        assert_eq!(h.stats().max_in_flight(), 1);
    }

    #[test]
    fn cache_key_is_keyed_and_holds_no_password() {
        let c = VerifiedCache::new(Duration::from_secs(60), 10);
        let pw = "a-long-password-that-would-show";
        c.insert("uid", pw, "$stored");
        let keys = c.keys();
        assert_eq!(keys.len(), 1);
        let k = keys[0];
        assert!(!k.windows(8).any(|w| pw.as_bytes().windows(8).any(|p| p == w)));
        // not an unkeyed hash of the same input
        let unkeyed: [u8; 32] = Sha256::digest(b"uid\0a-long-password-that-would-show").into();
        assert_ne!(k, unkeyed);
        // another process (key) gives another key
        assert_ne!(
            VerifiedCache::new(Duration::from_secs(60), 10).key_of("uid", pw),
            k
        );
        // user and password can't be shifted into each other
        assert_ne!(c.key_of("ui", &format!("d{pw}")), k);
        assert!(c.hit("uid", pw, "$stored"));
        assert!(!c.hit("uid", "other", "$stored"));
        assert!(!c.hit("uid", pw, "$changed-password"));
        c.forget_user("uid");
        assert!(!c.hit("uid", pw, "$stored"));
    }

    #[test]
    fn cache_entries_expire_and_are_capped() {
        let c = VerifiedCache::new(Duration::from_millis(30), 3);
        for i in 0..10 {
            c.insert(&format!("u{i}"), "pw", "$h");
        }
        assert_eq!(c.len(), 3);
        assert!(c.hit("u9", "pw", "$h"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!c.hit("u9", "pw", "$h"));
        let off = VerifiedCache::new(Duration::ZERO, 3);
        off.insert("u", "pw", "$h");
        assert!(!off.hit("u", "pw", "$h") && off.is_empty());
    }

    #[test]
    fn lockout_after_n_failures_and_reset_on_success() {
        let l = Lockout::new(3, Duration::from_secs(60), 100);
        l.failed("u");
        l.failed("u");
        assert!(!l.locked("u"));
        l.succeeded("u");
        l.failed("u");
        l.failed("u");
        assert!(!l.locked("u"), "a success resets the count");
        l.failed("u");
        assert!(l.locked("u"));
        assert!(!l.locked("v"));
        let off = Lockout::new(0, Duration::from_secs(60), 100);
        for _ in 0..10 {
            off.failed("u");
        }
        assert!(!off.locked("u"));
    }

    #[test]
    fn lockout_expires() {
        let l = Lockout::new(2, Duration::from_millis(40), 100);
        l.failed("u");
        l.failed("u");
        assert!(l.locked("u"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!l.locked("u"));
        // and the count started again
        l.failed("u");
        assert!(!l.locked("u"));
    }

    #[test]
    fn throttle_per_address_and_window() {
        let t = Throttle::new(3, Duration::from_millis(80), 100);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.wait(Some(a)), None);
            t.failed(Some(a));
        }
        let w = t.wait(Some(a)).expect("throttled");
        assert!(w <= Duration::from_millis(80));
        assert_eq!(t.wait(Some(b)), None, "other addresses are not affected");
        assert_eq!(t.wait(None), None);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(t.wait(Some(a)), None, "the window passed");
    }

    #[test]
    fn maps_stay_capped() {
        let t = Throttle::new(1, Duration::from_secs(60), 5);
        for i in 0..50u8 {
            t.failed(Some(IpAddr::from([10, 0, 0, i])));
        }
        assert_eq!(t.by_addr.lock().unwrap().len(), 5);
        let l = Lockout::new(1, Duration::from_secs(60), 5);
        for i in 0..50 {
            l.failed(&format!("u{i}"));
        }
        assert_eq!(l.failures.lock().unwrap().len(), 5);
    }
}
