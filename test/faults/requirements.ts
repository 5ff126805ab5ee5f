/** What the fault suite needs: network namespaces, and nftables (by its full name). */
import { netnsUnavailableReason } from '../helpers/netns.mjs';
import { commandMissing } from '../helpers/requirements.js';
import { NFT } from './fixtures/lib.mjs';

/** Why the fault fixtures cannot run here (no namespaces, no nftables), or undefined. */
export function faultsMissing(): string | undefined {
  return netnsUnavailableReason() ?? commandMissing(NFT, ['--version']);
}
