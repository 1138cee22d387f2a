// The ptlint extension: starts `ptlint server` and hands it Python files and Jupyter notebooks.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function settings() {
  const config = vscode.workspace.getConfiguration("ptlint");
  return {
    unsafeFixes: config.get("unsafeFixes", null),
    lintOnChange: config.get("lintOnChange", true),
    debounceMs: config.get("debounceMs", 30),
    configuration: config.get("configuration", null),
  };
}

async function start() {
  const command = vscode.workspace.getConfiguration("ptlint").get("path", ["ptlint"]);
  const serverOptions = { command: command[0], args: [...command.slice(1), "server"] };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "python" },
      { scheme: "untitled", language: "python" },
      { notebook: "jupyter-notebook", language: "python" },
    ],
    initializationOptions: settings(),
  };
  client = new LanguageClient("ptlint", "ptlint", serverOptions, clientOptions);
  await client.start();
}

async function activate(context) {
  await start();
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration("ptlint") || !client) return;
      if (event.affectsConfiguration("ptlint.path")) {
        await client.stop();
        await start();
        return;
      }
      await client.sendNotification("workspace/didChangeConfiguration", { settings: { ptlint: settings() } });
    }),
    vscode.commands.registerCommand("ptlint.restart", async () => {
      if (client) await client.stop();
      await start();
    }),
  );
}

async function deactivate() {
  if (client) await client.stop();
}

module.exports = { activate, deactivate };
