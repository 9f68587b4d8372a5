// Starts the CAP test service on 127.0.0.1 with an in-memory SQLite database.
//
// Usage: PORT=0 node serve.js
// PORT defaults to 0, which lets the OS pick a free port. When the server is
// ready, stdout gets one line {"listening":"http://127.0.0.1:PORT"} with the
// real port. SIGTERM and SIGINT close the server and exit with code 0, or 1
// if closing fails.

'use strict'

// cds reads package.json, db/ and srv/ relative to its root, which is the
// working directory at load time, so the script works from any directory.
process.chdir(__dirname)

const cds = require('@sap/cds')
const express = require('express')

const HOST = '127.0.0.1'
const LOG = cds.log('serve')

function parsePort(value) {
  if (value === undefined || value === '') return 0
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid PORT ${JSON.stringify(value)}: set it to an integer from 0 to 65535`)
  }
  return port
}

// Mirrors the start-up of @sap/cds/server.js (cds 9), except that it deploys
// the model to the in-memory database unconditionally and binds to HOST only.
// cds.server would call app.listen(port) without a host, so on all interfaces.
// It emits the same `bootstrap` and `listening` events as cds.server, because
// the OData V2 adapter plugin (loaded by `await cds.plugins`) depends on them.
async function start(port) {
  await cds.plugins

  const app = express()
  cds.app = app
  // Plugins such as the OData V2 adapter mount their middleware on this event.
  await cds.emit('bootstrap', app)

  // Returns req.headers as JSON so tests can check which headers reach the
  // backend. NOTE: Node.js lowercases the names and decodes the values as
  // Latin-1. It joins most repeated headers with ", " and drops repeats of
  // some, such as authorization and host (see http.IncomingMessage.headers).
  app.get('/echo/headers', (req, res) => res.json(req.headers))

  // Answers with an ETag and a sap-messages header whose value holds
  // non-ASCII text, as SAP Gateway sends messages in the user's language.
  // Node.js sends header strings UTF-8 encoded but rejects characters above
  // U+00FF, so the text keeps to Latin-1 letters.
  app.get('/echo/sap-messages', (req, res) => {
    const message = JSON.stringify([{ code: 'ZMSG/001', message: 'Größe geändert: Ærø', severity: 'info' }])
    res.setHeader('sap-messages', message)
    res.setHeader('ETag', 'W/"2024-01-01T00:00:00Z"')
    res.setHeader('Set-Cookie', 'backend-session=abc; Path=/')
    res.json({ ok: true })
  })

  const csn = await cds.load('*')
  cds.model = cds.compile.for.nodejs(csn)
  cds.db = await cds.connect.to('db')
  await cds.deploy(csn).to(cds.db)

  await cds.serve('all').in(app)
  await cds.emit('served', cds.services)

  const server = await new Promise((resolve, reject) => {
    const listening = app.listen(port, HOST, () => resolve(listening))
    listening.once('error', reject)
  })
  // The OData V2 adapter registers its /odata/v2 routes on this event and
  // forwards each V2 request as a V4 request to this url.
  const url = `http://${HOST}:${server.address().port}`
  await cds.emit('listening', { server, url })
  return { server, url }
}

function stopOnSignals(server) {
  let stopping = false
  const stop = (signal) => {
    if (stopping) return
    stopping = true
    LOG.info(`received ${signal}, closing server`)
    server.close(async (error) => {
      if (error) LOG.error('closing the HTTP server failed:', error)
      // Lets cds listeners (such as service bindings) clean up, as `cds serve` does.
      await Promise.all(cds.listeners('shutdown').map((listener) => listener()))
      await cds.db?.disconnect?.()
      process.exit(error ? 1 : 0)
    })
    // Keep-alive connections would otherwise keep server.close() waiting. This
    // also aborts requests in flight, which is fine for a test backend.
    server.closeAllConnections()
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

async function main() {
  const port = parsePort(process.env.PORT)
  const { server, url } = await start(port)
  stopOnSignals(server)

  process.stdout.write(JSON.stringify({ listening: url }) + '\n')
}

main().catch((error) => {
  LOG.error('starting the test service failed:', error)
  process.exit(1)
})
