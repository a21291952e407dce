import { Connection } from '@temporalio/client';
import { testAddress } from './helpers/env';

test('the suite talks to a real Temporal dev server', async () => {
  const connection = await Connection.connect({ address: testAddress() });
  const info = await connection.workflowService.getSystemInfo({});
  expect(info.serverVersion).toMatch(/^1\./);
  await connection.close();
});
