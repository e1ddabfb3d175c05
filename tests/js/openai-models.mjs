// The npm `openai` client's model list, paged as an application iterates it.
// Prints { ids, objects, ownedBy }.
import OpenAI from 'openai';
import { apiKey, baseURL, report } from './vix.mjs';

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const seen = { ids: [], objects: [], ownedBy: [] };
for await (const model of client.models.list()) {
  seen.ids.push(model.id);
  seen.objects.push(model.object);
  seen.ownedBy.push(model.owned_by);
}
report(seen);
