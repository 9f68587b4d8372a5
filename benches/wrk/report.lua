-- Prints one JSON line with the results of a wrk run, in place of wrk's
-- own summary, so that benches/run.sh can read exact figures. Latencies are
-- in microseconds; "errors" counts socket errors and responses with a
-- status of 400 or above, which wrk reports separately.
done = function(summary, latency, requests)
  local errors = summary.errors
  local failed = errors.connect + errors.read + errors.write + errors.timeout + errors.status
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,"max_us":%d,"errors":%d,"status_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    failed, errors.status, failed - errors.status))
end
