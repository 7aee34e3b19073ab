//! Counters in Redis, for replicas that should not add this load to the database. Each
//! check-and-add is one Lua script, which Redis runs atomically. The connection is made on
//! first use and re-made after failures (`ConnectionManager`), so a Redis that is down at
//! start-up or goes away is a store error for the request, not a gateway that cannot start.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::OnceCell;

use super::counters::StoreError;
use crate::domain::{Claim, Hold, Refusal, WindowCount};

const PREFIX: &str = "glm-gateway:limits";

const TAKE_WINDOW: &str = r"
local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local add, n = tonumber(ARGV[1]), tonumber(ARGV[5])
if r + n > tonumber(ARGV[2]) or t + add > tonumber(ARGV[3]) then return {0, r, t} end
r = redis.call('HINCRBY', KEYS[1], 'r', n)
t = redis.call('HINCRBY', KEYS[1], 't', add)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, r, t}
";

const ADJUST_WINDOW: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'r', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 't', ARGV[2])
end
return 1
";

/// KEYS: spent hash and reservation hash of each claim, in turn. ARGV: now ms, expiry ms,
/// request id, tokens, cost, then each claim's token budget and cost budget (-1: none).
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local et, ec = tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, #KEYS / 2 do
  local spent, held = KEYS[2 * i - 1], KEYS[2 * i]
  local st = tonumber(redis.call('HGET', spent, 't') or '0')
  local sc = tonumber(redis.call('HGET', spent, 'c') or '0')
  local ht, hc = 0, 0
  local all = redis.call('HGETALL', held)
  for j = 1, #all, 2 do
    local tok, cost, exp = string.match(all[j + 1], '^(%S+) (%S+) (%S+)$')
    if tonumber(exp) <= now then
      redis.call('HDEL', held, all[j])
    else
      ht, hc = ht + tonumber(tok), hc + tonumber(cost)
    end
  end
  local tb, cb = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  local over = tb >= 0 and st + ht + et > tb
  over = over or (cb >= 0 and (sc + hc >= cb or sc + hc + ec > cb))
  if over then return {i, st, tostring(sc)} end
end
for i = 1, #KEYS / 2 do
  redis.call('HSET', KEYS[2 * i], ARGV[3], ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[2])
  redis.call('PEXPIREAT', KEYS[2 * i], ARGV[2])
end
return {0, 0, '0'}
";

/// KEYS as for RESERVE. ARGV: request id, tokens, cost, then each claim's counter TTL (0: none).
const SETTLE: &str = r"
for i = 1, #KEYS / 2 do
  redis.call('HDEL', KEYS[2 * i], ARGV[1])
  redis.call('HINCRBY', KEYS[2 * i - 1], 't', ARGV[2])
  redis.call('HINCRBYFLOAT', KEYS[2 * i - 1], 'c', ARGV[3])
  local ttl = tonumber(ARGV[3 + i])
  if ttl > 0 then redis.call('EXPIRE', KEYS[2 * i - 1], ttl) end
end
return 1
";

pub struct RedisCounters {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    /// Unix ms of the last failed first connection: requests fail fast for a second after it,
    /// rather than each waiting for its own connection attempt.
    failed_at_ms: AtomicI64,
    scripts: [Script; 4],
}

impl RedisCounters {
    /// Checks the URL only; the connection is made on first use.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
            failed_at_ms: AtomicI64::new(i64::MIN / 2),
            scripts: [
                Script::new(TAKE_WINDOW),
                Script::new(ADJUST_WINDOW),
                Script::new(RESERVE),
                Script::new(SETTLE),
            ],
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(manager) = self.connection.get() {
            return Ok(manager.clone());
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        if now_ms - self.failed_at_ms.load(Ordering::Relaxed) < 1000 {
            return Err(StoreError("redis: not connected (retrying)".into()));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let manager = self
            .connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .inspect_err(|_| self.failed_at_ms.store(now_ms, Ordering::Relaxed))?;
        Ok(manager.clone())
    }

    pub async fn take_window(
        &self,
        scope: &str,
        window_start: i64,
        window_secs: i64,
        (requests, tokens): (i64, i64),
        (max_requests, max_tokens): (i64, i64),
    ) -> Result<WindowCount, StoreError> {
        let mut connection = self.connection().await?;
        let (admitted, requests, tokens): (i64, i64, i64) = self.scripts[0]
            .key(window_key(scope, window_start))
            .arg(tokens)
            .arg(max_requests)
            .arg(max_tokens)
            .arg(window_secs * 2)
            .arg(requests)
            .invoke_async(&mut connection)
            .await?;
        Ok(WindowCount {
            admitted: admitted == 1,
            requests,
            tokens,
        })
    }

    pub async fn adjust_window(
        &self,
        scope: &str,
        window_start: i64,
        requests: i64,
        tokens: i64,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: i64 = self.scripts[1]
            .key(window_key(scope, window_start))
            .arg(requests)
            .arg(tokens)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    pub async fn reserve(
        &self,
        claims: &[Claim],
        hold: Hold<'_>,
    ) -> Result<Option<Refusal>, StoreError> {
        let mut connection = self.connection().await?;
        let mut invocation = self.scripts[2].prepare_invoke();
        for claim in claims {
            invocation.key(spent_key(claim)).key(held_key(claim));
        }
        invocation
            .arg(hold.now_ms)
            .arg(hold.expires_ms)
            .arg(hold.request_id)
            .arg(hold.tokens)
            .arg(hold.cost);
        for claim in claims {
            invocation
                .arg(claim.token_budget.unwrap_or(-1))
                .arg(claim.cost_budget.unwrap_or(-1.0));
        }
        let (index, spent_tokens, spent_cost): (usize, i64, String) =
            invocation.invoke_async(&mut connection).await?;
        Ok((index > 0).then(|| Refusal {
            claim: index - 1,
            spent_tokens,
            spent_cost: spent_cost.parse().unwrap_or(0.0),
        }))
    }

    pub async fn settle(
        &self,
        request_id: &str,
        claims: &[Claim],
        tokens: i64,
        cost: f64,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let mut invocation = self.scripts[3].prepare_invoke();
        for claim in claims {
            invocation.key(spent_key(claim)).key(held_key(claim));
        }
        invocation.arg(request_id).arg(tokens).arg(cost);
        for claim in claims {
            invocation.arg(claim.ttl_secs);
        }
        let _: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(())
    }
}

fn window_key(scope: &str, window_start: i64) -> String {
    format!("{PREFIX}:window:{scope}:{window_start}")
}

fn spent_key(claim: &Claim) -> String {
    format!("{PREFIX}:spent:{}:{}", claim.scope, claim.period_start)
}

fn held_key(claim: &Claim) -> String {
    format!("{PREFIX}:held:{}:{}", claim.scope, claim.period_start)
}
