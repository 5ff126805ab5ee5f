/**
 * Writes grafana/porter.json from dashboard.ts: `npm run dashboard` in packages/metrics.
 * scripts/test.sh runs it and fails when the committed file changes.
 */
import { writeFileSync } from 'node:fs';
import { porterDashboard } from './dashboard.js';

const file = new URL('./porter.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(porterDashboard(), null, 2)}\n`);
