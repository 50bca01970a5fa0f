#!/usr/bin/python
"""Make a host's packages, service users, directories and files what a component declares, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_files
short_description: Converge a component's packages, users, directories and files on a host in one call
version_added: 0.2.0
author: gymfleet developers
description:
  - Installs the packages, creates the service users, the directories and the files a component declares (with
    their owner, group and mode), and changes nothing that already matches; a file is replaced atomically
    (written beside it, then renamed).
  - One call where a role would otherwise run an C(apt) task, and one C(user), C(file), C(copy) or C(template)
    task per path, each a round trip to the host.
  - The action plugin of the same name runs on the controller first. It turns O(files[].src) (a file or a whole
    directory on the controller, looked up like M(ansible.builtin.copy)'s) and O(files[].template) (rendered like
    M(ansible.builtin.template)'s, with O(files[].vars) added) into content, so the host gets plain data.
  - Nothing is ever deleted; a package, user, directory or file that is not declared is left alone.
options:
  packages:
    description:
      - Debian packages the component needs, installed first (C(apt-get update), then C(apt-get install)) when
        C(dpkg) does not have them all; one that is installed is never upgraded. Names only, no versions.
    type: list
    elements: str
    default: []
  users:
    description:
      - Service users to create first (each with a group of its name), or to correct when their home or shell
        differ; the directories and files may then be theirs. A home is never created or moved here (declare it
        in O(directories) with the mode it needs).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      home:
        description: Home directory recorded for the user.
        type: path
        required: true
      shell:
        description: Login shell.
        type: path
        default: /usr/sbin/nologin
      system:
        description: A system user (an id below 1000, no ageing); only for a user that does not exist yet.
        type: bool
        default: true
  directories:
    description: Directories to create (with their parents) or correct.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner; the directory's current owner when left out.
        type: str
      group:
        description: Group; the owner's group when O(directories[].owner) is given and this is not.
        type: str
      mode:
        description: Octal mode such as C("0750"); left as it is when left out.
        type: str
  files:
    description: Files with their content. After the action plugin, every entry has O(files[].content) or
      O(files[].content_base64).
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path; the directory must exist or be declared in O(directories).
        type: path
        required: true
      content:
        description: Text content.
        type: str
      content_base64:
        description: Binary content, base64-encoded.
        type: str
      src:
        description: A file on the controller (action plugin), or a directory whose whole tree is copied under
          O(files[].dest) with directories C(0755) and files C(0644), or C(0755) where the source is executable.
        type: str
      template:
        description: A Jinja template on the controller (action plugin).
        type: str
      vars:
        description: Extra variables for O(files[].template).
        type: dict
        default: {}
      secret:
        description: The content is never shown, in a diff or in the task's arguments.
        type: bool
        default: false
      owner:
        description: Owner; when left out, the user the module runs as (root on the hosts, where gymfleet's tasks
          become root; the controller's user for a file written on the controller).
        type: str
      group:
        description: Group; the owner's group when left out.
        type: str
      mode:
        description: Octal mode; C("0644") when left out (C("0600") for a secret).
        type: str
      validate:
        description:
          - A command that must accept the new content before it replaces O(files[].dest), with C(%s) standing for
            the candidate's path (a file beside the destination, with the same extension), as
            M(ansible.builtin.copy)'s O(ansible.builtin.copy#module:validate). When it exits non-zero the destination
            stays as it was and the task fails with the command's output in RV(rejected). Not run in check mode.
        type: str
  secret_files:
    description: Like O(files), with the content never logged; the action plugin moves the files that say
      O(files[].secret) here.
    type: list
    elements: dict
    default: []
  absent:
    description:
      - Files (or symlinks) removed when they are there, after the rest is laid out (what the component wrote once
        and no longer wants). A directory listed here fails the call before it is touched.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Secret files and binary content show only that they change.
"""

EXAMPLES = r"""
- name: Create Ray's user and lay out its home
  gymfleet.cluster.host_files:
    users:
      - {name: ray, home: /var/lib/ray}
    directories:
      - {path: /var/lib/ray, owner: ray, mode: "0750"}

- name: Lay out Redis' instances
  gymfleet.cluster.host_files:
    directories:
      - {path: /var/lib/redis/6379, owner: redis, mode: "0750"}
    files:
      - {dest: /etc/redis/redis-6379.conf, template: redis.conf.j2, vars: {item: {port: 6379}}, owner: redis,
         mode: "0640"}
      - {dest: /etc/redis/redis-6379.secrets.conf, template: redis-secrets.conf.j2, vars: {item: {port: 6379}},
         owner: redis, mode: "0640", secret: true}

- name: Write Envoy's config only if Envoy accepts it
  gymfleet.cluster.host_files:
    files:
      - {dest: /etc/gymfleet/envoy/envoy.yaml, content: "{{ config }}", validate: /usr/bin/envoy --mode validate -c %s}

- name: Copy a project from the controller
  gymfleet.cluster.host_files:
    files:
      - {src: /srv/echo_env/, dest: /opt/gymfleet/openenv/project}
"""

RETURN = r"""
installed:
  description: Packages installed (in check mode, that would be).
  returned: always
  type: list
  elements: str
users:
  description: Users created or corrected (in check mode, that would be).
  returned: always
  type: list
  elements: str
created:
  description: Directories created or corrected.
  returned: always
  type: list
  elements: str
written:
  description: Files written or corrected (in check mode, that would be).
  returned: always
  type: list
  elements: str
removed:
  description: Files of O(absent) that were there and are removed (in check mode, that would be).
  returned: always
  type: list
  elements: str
rejected:
  description: The file whose O(files[].validate) command refused the new content, and what it said.
  returned: failure, when a validate command refused
  type: dict
  contains:
    dest: {description: The file left as it was., type: str}
    rc: {description: The command's exit status., type: int}
    stdout: {description: Its output., type: str}
    stderr: {description: Its error output., type: str}
  sample: {dest: /etc/gymfleet/envoy/envoy.yaml, rc: 1, stdout: "", stderr: "error initializing configuration ..."}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.host_layout import LAYOUT_OPTIONS, host_files_result


def main():
    module = AnsibleModule(argument_spec=LAYOUT_OPTIONS, supports_check_mode=True)
    result = host_files_result(module.params, module.check_mode, module._diff, module.run_command)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
