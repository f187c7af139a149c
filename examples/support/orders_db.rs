//! The shop's orders table in PostgreSQL, through tokio-postgres. Each call opens its own
//! connection: after a failover the next call reaches whatever answers now, with no pool to
//! drain, and a refused call costs the shop nothing but that call.

use std::time::Duration;

use tokio_postgres::{Config, NoTls};

pub struct OrdersDb {
    config: Config,
    timeout: Duration,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl OrdersDb {
    /// `conninfo` is a libpq connection string.
    pub fn new(conninfo: &str, timeout: Duration) -> std::io::Result<Self> {
        let mut config: Config = conninfo
            .parse()
            .map_err(|e| std::io::Error::other(format!("ORDERS_DB: {e}")))?;
        config.connect_timeout(timeout);
        Ok(OrdersDb { config, timeout })
    }

    async fn client(&self) -> Result<tokio_postgres::Client, Failure> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Makes the table, retrying until the database answers (it may start after the shop).
    pub fn create_table_in_background(&self) {
        let config = self.config.clone();
        let timeout = self.timeout;
        tokio::spawn(async move {
            let db = OrdersDb { config, timeout };
            loop {
                let made = tokio::time::timeout(timeout, async {
                    db.client()
                        .await?
                        .batch_execute(
                            "CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, sku text NOT NULL, placed timestamptz NOT NULL DEFAULT now())",
                        )
                        .await
                        .map_err(Failure::from)
                })
                .await;
                match made {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => eprintln!("orders: making the table: {e}; retrying"),
                    Err(_) => eprintln!("orders: making the table timed out; retrying"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// Stores an order; its id.
    pub async fn place(&self, sku: &str) -> Result<i64, Failure> {
        let call = async {
            let row = self
                .client()
                .await?
                .query_one("INSERT INTO orders (sku) VALUES ($1) RETURNING id", &[&sku])
                .await?;
            Ok::<i64, Failure>(row.get(0))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Failure::from("timed out"))?
    }

    /// The last ten orders, newest first, as a JSON array.
    pub async fn recent(&self) -> Result<String, Failure> {
        let call = async {
            let rows = self
                .client()
                .await?
                .query("SELECT id, sku FROM orders ORDER BY id DESC LIMIT 10", &[])
                .await?;
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(
                    |r| serde_json::json!({"id": r.get::<_, i64>(0), "sku": r.get::<_, String>(1)}),
                )
                .collect();
            Ok::<String, Failure>(serde_json::Value::from(items).to_string())
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Failure::from("timed out"))?
    }
}
