-- overview --
-- Counts across every client: clients, connections by state, runs of the last day, waiting jobs (SECURITY DEFINER).
SELECT clients, connections_active, connections_needs_reauth, runs_last_day, runs_failed_last_day, jobs_waiting
FROM hapex_admin_overview()

-- client_report --
-- Per client over a period: runs, failed runs, cost (SECURITY DEFINER; ids, names and counts).
SELECT client_id, name, runs, failed_runs, cost_microusd
FROM hapex_admin_client_report(%(start)s, %(end)s)

-- reauth_connections --
-- Connections waiting for their client to reconnect them (SECURITY DEFINER; metadata only).
SELECT client_id, client_name, connection_id, provider, status_reason, since, health_failures,
       health_error_class
FROM hapex_admin_reauth_connections()

-- failing_automations --
-- Automations with failed runs in a period, or paused (SECURITY DEFINER; ids, counts, error classes).
SELECT client_id, client_name, automation_id, status, runs, failed_runs, last_failed_at, last_error_class
FROM hapex_admin_failing_automations(%(start)s, %(end)s)

-- queue_depth --
-- Jobs per queue and status; for waiting jobs, since when the oldest has waited.
SELECT j.queue_name, j.status::text AS status, count(*) AS jobs, min(d.at) AS oldest_waiting_since
FROM procrastinate_jobs j
LEFT JOIN LATERAL (SELECT e.at FROM procrastinate_events e
                   WHERE e.job_id = j.id AND e.type = 'deferred' AND j.status = 'todo'
                   ORDER BY e.at LIMIT 1) d ON true
GROUP BY j.queue_name, j.status
ORDER BY j.queue_name, j.status

-- worker_heartbeats --
-- Each registered worker, when it last sent a heartbeat, and how many jobs it is running.
SELECT w.id AS worker_id, w.last_heartbeat,
       floor(extract(epoch FROM now() - w.last_heartbeat))::integer AS seconds_since_heartbeat,
       (SELECT count(*) FROM procrastinate_jobs j WHERE j.worker_id = w.id AND j.status = 'doing') AS jobs_running
FROM procrastinate_workers w
ORDER BY w.id
