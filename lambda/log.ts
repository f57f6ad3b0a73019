/** One JSON line per event, for CloudWatch Logs Insights. The ResponseURL is never logged. */
export function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}
